"""Face detection, alignment and paste-back on real public-domain photos and synthetic warps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynface.faces.align import (
    FFHQ_512_TEMPLATE,
    align_face,
    align_faces,
    similarity_transform,
    template,
)
from dynface.faces.detect import FaceDetector, prior_boxes, select_faces
from dynface.faces.paste import crop_mask, paste_back, upscale_background
from dynface.io import read_image

from .conftest import TEST_DATA, shared_path

# Hand-checked landmark positions (x, y), read off 5x-8x zoomed crops with a pixel grid:
# pupil centres, nose tip, mouth corners; left/right as seen in the image.
ASTRONAUT_HAND = np.array([[203, 102], [245, 104], [224, 128], [203, 140], [244, 141]], float)
GRACE_HOPPER_HAND = np.array([[222, 189], [303, 187], [262, 243], [231, 279], [301, 277]], float)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB for images in [0, 1]."""
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(TEST_DATA / "astronaut.png").pixels


@pytest.mark.parametrize(
    ("name", "hand"),
    [("astronaut.png", ASTRONAUT_HAND), ("grace_hopper.jpg", GRACE_HOPPER_HAND)],
)
def test_one_face_with_hand_checked_landmarks(detector, name, hand):
    image = read_image(TEST_DATA / name).pixels
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.99
    x1, y1, x2, y2 = face.box
    assert x1 < hand[:, 0].min() and hand[:, 0].max() < x2
    assert y1 < hand[:, 1].min() and hand[:, 1].max() < y2
    error = np.linalg.norm(face.landmarks - hand, axis=1)
    # Within 4% of the face size: 4 px on the astronaut (~107 px), 8 px on Grace Hopper (~197 px).
    assert error.max() < 0.04 * face.size, error


def test_detection_is_the_same_for_uint8_gray_and_rgba(detector, astronaut):
    reference = detector.detect(astronaut)[0].landmarks
    as_uint8 = np.round(astronaut * 255).astype(np.uint8)
    assert np.abs(detector.detect(as_uint8)[0].landmarks - reference).max() < 0.5
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert len(detector.detect(gray)) == 1
    rgba = np.concatenate([astronaut, np.ones_like(astronaut[..., :1])], axis=2)
    assert np.abs(detector.detect(rgba)[0].landmarks - reference).max() < 0.5


def test_large_and_small_images_map_back_to_original_coordinates(detector, astronaut):
    reference = detector.detect(astronaut)[0]
    for factor in (3.0, 0.35):
        size = (round(512 * factor), round(512 * factor))
        resized = cv2.resize(astronaut, size, interpolation=cv2.INTER_CUBIC)
        faces = detector.detect(resized)
        assert len(faces) == 1
        back = (faces[0].landmarks + 0.5) / factor - 0.5
        assert np.linalg.norm(back - reference.landmarks, axis=1).max() < 0.05 * reference.size


def test_no_face_tiny_and_thresholds(detector):
    rng = np.random.default_rng(0)
    assert detector.detect(rng.random((300, 400, 3), dtype=np.float32) * 0.1 + 0.45) == []
    assert detector.detect(np.zeros((1, 1, 3), np.float32)) == []
    with pytest.raises(ValueError):
        FaceDetector(conf_threshold=1.5)
    with pytest.raises(ValueError):
        detector.detect(np.zeros((4, 4, 2)))


def test_min_face_size_and_selection(detector, astronaut):
    assert FaceDetector(min_face_size=500).detect(astronaut) == []
    canvas = np.full((600, 1200, 3), 0.5, np.float32)
    canvas[44:556, :512] = astronaut
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    canvas[172:428, 700:956] = small
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].size > faces[1].size
    assert select_faces(faces, largest=True) == [faces[0]]
    centered = select_faces(faces, image_size=(1200, 600), only_center=True)
    assert len(centered) == 1 and centered[0].center[0] > 600
    assert select_faces(faces) == faces
    with pytest.raises(ValueError):
        select_faces(faces, only_center=True)


def test_prior_boxes_follow_the_retinaface_layout():
    priors = prior_boxes(64, 96)
    # 8x12 cells x2 at stride 8, 4x6 x2 at stride 16, 2x3 x2 at stride 32.
    assert priors.shape == (2 * (96 + 24 + 6), 4)
    np.testing.assert_allclose(priors[0], [4, 4, 16, 16])
    np.testing.assert_allclose(priors[1], [4, 4, 32, 32])
    np.testing.assert_allclose(priors[2], [12, 4, 16, 16])
    np.testing.assert_allclose(priors[-1], [80, 48, 512, 512])


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("parts", "low", "high"),
    [
        (("data", "gpen_examples", "whole", "Solvay_conference_1927.png"), 25, 29),
        (("data", "packages", "insightface", "t1.jpg"), 6, 6),
    ],
)
def test_group_photos_give_plausible_face_counts(parts, low, high):
    image = read_image(shared_path(*parts)).pixels
    faces = FaceDetector(refine=False).detect(image)
    assert low <= len(faces) <= high


def test_similarity_transform_is_exact_and_batched():
    rng = np.random.default_rng(1)
    angle, scale, shift = 0.4, 1.7, np.array([30.0, -12.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = rng.random((5, 2)) * 100
    dst = scale * src @ rotation.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)
    batch = similarity_transform(np.stack([src, dst]), np.stack([dst, src]))
    np.testing.assert_allclose(batch[0], matrix, atol=1e-9)
    np.testing.assert_allclose(template(256), FFHQ_512_TEMPLATE / 2)


def test_align_face_puts_landmarks_on_the_template(astronaut):
    landmarks = ASTRONAUT_HAND
    crop, affine = align_face(astronaut, landmarks, size=512)
    assert crop.shape == (512, 512, 3)
    mapped = landmarks @ affine[:, :2].T + affine[:, 2]
    # Least squares: centroids coincide, residuals are those of a face of another shape, and any
    # nudge of the transform makes them worse.
    np.testing.assert_allclose(mapped.mean(axis=0), FFHQ_512_TEMPLATE.mean(axis=0), atol=1e-6)
    residual = np.sum((mapped - FFHQ_512_TEMPLATE) ** 2)
    assert np.linalg.norm(mapped - FFHQ_512_TEMPLATE, axis=1).max() < 15.0
    for nudge in (np.array([[1.01, 0, 0], [0, 1.01, 0]]), np.array([[1, 0.01, 0], [-0.01, 1, 0]])):
        nudged = landmarks @ (nudge[:, :2] @ affine[:, :2]).T + affine[:, 2]
        assert np.sum((nudged - FFHQ_512_TEMPLATE) ** 2) > residual
    crops, affines = align_faces(astronaut, [landmarks, landmarks], size=256)
    assert crops.shape == (2, 256, 256, 3)
    np.testing.assert_allclose(affines[0], affine / 2, atol=1e-9)


def test_align_shrinks_large_faces_without_aliasing():
    stripes = np.zeros((2048, 2048, 3), np.float32)
    stripes[:, ::2] = 1.0  # Nyquist stripes: a plain 4x warp would alias them into a pattern.
    landmarks = FFHQ_512_TEMPLATE * 4 + 100
    crop, _ = align_face(stripes, landmarks, size=512)
    assert abs(float(crop[100:400, 100:400].mean()) - 0.5) < 0.02
    assert float(crop[100:400, 100:400].std()) < 0.05


@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.jpg"])
def test_recover_a_crop_warped_into_a_canvas(detector, name):
    """Warp an aligned face with a known similarity; detection + alignment recovers the crop."""
    image = read_image(TEST_DATA / name).pixels
    crop, _ = align_face(image, detector.detect(image)[0].landmarks)
    crop = np.clip(crop, 0, 1)
    face = (slice(128, 448), slice(128, 384))
    results = []
    # (scale, degrees, sub-pixel shift): poses unlike each other and unlike the original's.
    for scale, angle, shift in [
        (1.0, 0.0, 0.0),
        (0.5, -30.0, 0.25),
        (0.8, 20.0, 0.6),
        (1.2, 30, 0.4),
    ]:
        known = cv2.getRotationMatrix2D((256, 256), angle, scale)
        known[:, 2] += (450 - 256 + shift, 400 - 256 + 0.5 * shift)
        canvas = cv2.warpAffine(
            crop, known, (900, 800), flags=cv2.INTER_CUBIC, borderValue=(0.5, 0.5, 0.5)
        )
        canvas = np.clip(canvas, 0, 1)
        faces = detector.detect(canvas)
        assert len(faces) == 1
        recovered, affine = align_face(canvas, faces[0].landmarks)
        # affine @ known maps the original crop onto the recovered one: the identity, sub-pixel.
        composed = affine @ np.vstack([known, [0, 0, 1]])
        assert np.abs(composed[:, :2] - np.eye(2)).max() < 0.003
        assert np.abs(composed[:, 2]).max() < 1.0  # px of a 512 crop
        results.append(psnr(np.clip(recovered, 0, 1)[face], crop[face]))
        pasted = paste_back(canvas, recovered[None], affine[None])
        assert psnr(pasted, canvas) > 40.0
    assert min(results) > 30.0, results


def test_paste_back_unchanged_faces_is_seamless(detector, astronaut):
    faces = detector.detect(astronaut)
    crops, affines = align_faces(astronaut, [f.landmarks for f in faces])
    pasted = paste_back(astronaut, np.clip(crops, 0, 1), affines)
    assert psnr(pasted, astronaut) > 40.0
    up = upscale_background(astronaut, 2)
    pasted_up = paste_back(up, np.clip(crops, 0, 1), affines, upscale=2)
    assert pasted_up.shape == (1024, 1024, 3)
    assert psnr(pasted_up, up) > 40.0


def test_paste_back_blends_only_inside_the_feathered_mask(detector, astronaut):
    face = detector.detect(astronaut)[0]
    crop, affine = align_face(astronaut, face.landmarks)
    white = np.ones_like(crop)
    pasted = paste_back(astronaut, white[None], affine[None])
    changed = np.abs(pasted - astronaut).max(axis=2) > 1e-4
    ys, xs = np.nonzero(changed)
    # Only pixels near the face change; the landmarks' area becomes white.
    assert within(xs, face.box[0] - face.size, face.box[2] + face.size)
    assert within(ys, face.box[1] - face.size, face.box[3] + face.size)
    center = face.landmarks.mean(axis=0).round().astype(int)
    assert pasted[center[1], center[0]].min() > 0.99
    mask = crop_mask(512)
    assert mask[0].max() < 1e-3 and mask[256, 256] > 0.999


def within(values: np.ndarray, low: float, high: float) -> bool:
    """All values lie in [low, high]."""
    return bool(values.min() >= low and values.max() <= high)


def test_sideways_camera_photo_is_detected_upright(detector, tmp_path):
    """EXIF orientation is honoured before detection: one upright face, eyes above the mouth."""
    from PIL import Image

    stored = Image.open(TEST_DATA / "astronaut.png").rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "sideways.png", exif=exif)
    photo = read_image(tmp_path / "sideways.png").pixels
    faces = detector.detect(photo)
    assert len(faces) == 1
    marks = faces[0].landmarks
    eye_gap = marks[1] - marks[0]
    assert abs(eye_gap[1]) < 0.2 * abs(eye_gap[0])  # the eyes are level
    assert marks[:2, 1].mean() + 20 < marks[3:, 1].mean()  # and above the mouth


@pytest.mark.parametrize("scale", [2.0, 1.5, 3.0, 0.5])
def test_tiled_background_upscale_equals_a_whole_image_resize(astronaut, scale):
    """The background is upscaled strip by strip; the seams must not show anywhere."""
    photo = np.round(astronaut * 255).astype(np.uint8)
    tiled = upscale_background(photo, scale)
    height, width = tiled.shape[:2]
    assert (width, height) == (round(512 * scale), round(512 * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    whole = cv2.resize(photo, (width, height), interpolation=interp)
    assert tiled.dtype == np.uint8
    assert np.abs(tiled.astype(int) - whole).max() <= 1  # fixed-point rounding only


def test_paste_into_a_uint8_photo_matches_the_float_paste(detector, astronaut):
    faces = detector.detect(astronaut)
    crops, affines = align_faces(astronaut, [f.landmarks for f in faces])
    white = np.ones_like(crops)
    as_float = paste_back(upscale_background(astronaut, 2), white, affines, upscale=2)
    photo = np.round(astronaut * 255).astype(np.uint8)
    as_uint8 = paste_back(upscale_background(photo, 2), white, affines, upscale=2)
    assert as_uint8.dtype == np.uint8 and as_uint8.shape == as_float.shape
    assert np.abs(as_uint8 / 255.0 - as_float).max() < 2 / 255
