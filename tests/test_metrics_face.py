"""Identity (dlib 128-D) and landmark distances on real faces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dynface.io import read_image
from dynface.metrics.face import DlibFaces, to_uint8

from .conftest import shared_path
from .metrics_helpers import face


@pytest.fixture(scope="module")
def faces() -> DlibFaces:
    return DlibFaces()


def test_pair_scores_small_for_a_copy_and_grow_with_shift(faces: DlibFaces) -> None:
    gt = to_uint8(face("grace_hopper", 384)[0])
    same = faces.pair(gt, gt)
    assert same.idd == pytest.approx(0.0, abs=1e-9) and same.lmd == pytest.approx(0.0, abs=1e-9)
    shifted = np.ascontiguousarray(np.roll(gt, 12, axis=1))
    moved = faces.pair(shifted, gt)
    assert moved.lmd > 0.05 and moved.idd < 0.6


def test_no_face_gives_nan_not_a_number(faces: DlibFaces) -> None:
    blank = np.full((128, 128, 3), 127, dtype=np.uint8)
    scores = faces.pair(blank, blank)
    assert np.isnan(scores.idd) and np.isnan(scores.lmd)


def test_two_public_domain_people_are_far_apart(faces: DlibFaces) -> None:
    a = faces.embedding(to_uint8(face("astronaut", None)[0]))
    b = faces.embedding(to_uint8(face("grace_hopper", None)[0]))
    assert float(np.linalg.norm(a - b)) > 0.6


@pytest.mark.shared_data
def test_same_person_closer_than_different_people_on_celebref(faces: DlibFaces) -> None:
    root = shared_path("data", "dmdnet_celebref", "refs_hq")
    people = sorted(p for p in root.iterdir() if p.is_dir())[:4]
    embeddings = {}
    for person in people:
        for path in sorted(person.iterdir())[:2]:
            image = to_uint8(torch.from_numpy(read_image(path).pixels).permute(2, 0, 1))
            embeddings[(person.name, path.name)] = faces.embedding(image)
    same, different = [], []
    for (ka, ea), (kb, eb) in itertools.combinations(embeddings.items(), 2):
        (same if ka[0] == kb[0] else different).append(float(np.linalg.norm(ea - eb)))
    assert len(same) == 4 and len(different) == 24
    assert np.mean(same) < np.mean(different)
    assert max(same) < np.median(different)
