"""Trace pictures of the web UI: drawn from the trace numbers, heat map where the map is high."""

from __future__ import annotations

import numpy as np

from dynface.ui.traces import dgsa_overlay, stack_pictures, summary_rows, trace_picture

TRACE = {
    "mode": "dynface",
    "s_star": 2.31,
    "s_levels": [2.31, 1.31, 0.31],
    "t_levels": [612, 430, 250],
    "eta": 0.42,
    "start_t": 612,
    "nfe": 154,
    "dgsa": "heuristic",
    "dgsa_mean": 0.5,
    "fidelity": 0.8,
    "s_effective": 2.0,
    "timing": {"restorer_s": 0.25, "estimate_s": 0.25, "sampling_s": 1.5},
}


def test_dgsa_overlay_colours_the_face_where_the_map_is_strong() -> None:
    face = np.full((64, 64, 3), 0.5, np.float32)
    dgsa = np.zeros((16, 16), np.float32)
    dgsa[:, 8:] = 1.0  # full guidance on the right half only
    overlay = dgsa_overlay(face, dgsa)
    left, right = overlay[:, :24].mean(axis=(0, 1)), overlay[:, 40:].mean(axis=(0, 1))
    # inferno: 0 is near black, 1 is pale yellow: the right half is brighter and yellower.
    assert right.sum() > left.sum() + 0.5
    assert right[0] > right[2] and right[1] > right[2]
    assert overlay.shape == face.shape


def test_trace_picture_changes_with_the_start_step_and_the_map() -> None:
    face = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    flat = dict(TRACE, dgsa_thumbnail=np.full((16, 16), 0.5).tolist())
    picture = trace_picture(face, flat, label="photo · face 1")
    assert picture.dtype == np.uint8 and picture.shape == (300, 900, 3)
    later = trace_picture(face, dict(flat, start_t=200, t_levels=[200, 150, 100]))
    other_map = trace_picture(face, dict(flat, dgsa_thumbnail=np.ones((16, 16)).tolist()))
    timeline, dgsa_panel = slice(330, 900), slice(0, 260)
    assert np.abs(picture[:, timeline].astype(int) - later[:, timeline]).mean() > 1
    assert np.abs(picture[:, dgsa_panel].astype(int) - other_map[:, dgsa_panel]).mean() > 1


def test_trace_picture_without_a_map_or_a_trace_still_draws() -> None:
    face = np.zeros((32, 32, 3), np.float32)
    assert trace_picture(face, dict(TRACE, dgsa="none")).shape == (300, 900, 3)
    assert trace_picture(face, None).shape == (300, 900, 3)


def test_stack_pictures_keeps_every_picture_in_order() -> None:
    red = np.zeros((10, 20, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((5, 12, 3), np.uint8)
    blue[..., 2] = 255
    sheet = stack_pictures([red, blue], gap=3)
    assert sheet.shape == (18, 20, 3)
    assert (sheet[:10, :, 0] == 255).all() and (sheet[13:, :12, 2] == 255).all()
    assert (sheet[10:13] == 255).all() and (sheet[13:, 12:] == 255).all()


def test_summary_rows_report_the_trace_numbers() -> None:
    rows = summary_rows([("photo", 0, TRACE), ("photo", 1, None)])
    assert rows[0] == [
        "photo", "1", "0.8", "2.31", "612", "612, 430, 250", "2.31, 1.31, 0.31", "0.42", "0.5",
        "2.00 s",
    ]  # fmt: skip
    assert rows[1][2:] == ["-"] * 8
