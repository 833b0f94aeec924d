"""Shared test setup: offline mode, paths to the golden fixtures and to ../shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DYNFACE_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
SHARED_DATA = SHARED / "data"
TEST_DATA = REPO / "tests" / "data"


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the calling test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not checked out here)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own empty weights cache so nothing touches ~/.cache or the network."""
    monkeypatch.setenv("DYNFACE_HOME", str(tmp_path_factory.mktemp("dynface_home")))


@pytest.fixture
def export_spy(monkeypatch):
    """Counts real exports (the cache is only checked through the graph files they write)."""
    from dynface.backends import onnx_export

    calls = []
    real = onnx_export.export_onnx

    def spy(net, example_inputs, path):
        calls.append(path)
        real(net, example_inputs, path)

    monkeypatch.setattr(onnx_export, "export_onnx", spy)
    return calls
