"""The maps at every door: architecture.md names real modules, no dangling design references,
one cache home, one set of constants."""

from __future__ import annotations

import importlib
import re

from .conftest import REPO


def test_architecture_names_modules_that_exist():
    text = (REPO / "docs" / "architecture.md").read_text()
    names = set(re.findall(r"\bdynface(?:\.[a-z_]+)+", text))
    assert len(names) >= 15
    for name in sorted(names):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            module, _, attr = name.rpartition(".")
            assert hasattr(importlib.import_module(module), attr), name
    for step in (
        "photo",
        "faces",
        "blur level",
        "start steps",
        "guided sampler",
        "paste",
        "outputs",
    ):
        assert step in text


def test_no_reference_to_a_design_document_the_repository_lacks():
    files = [*REPO.joinpath("src").rglob("*.py"), *REPO.joinpath("src").rglob("*.yaml")]
    files += [*REPO.joinpath("docs").glob("*.md"), REPO / "README.md"]
    offenders = [str(p) for p in files if re.search(r"\bDESIGN\b", p.read_text())]
    assert offenders == []


def test_one_cache_home(monkeypatch, tmp_path):
    from dynface import weights
    from dynface.metrics.evaluate import default_cache_dir

    monkeypatch.delenv("DYNFACE_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir().parent == weights.home_dir() == tmp_path / "dynface"


def test_constants_have_one_home():
    from dynface import units
    from dynface.data import targets
    from dynface.method import dblm, dsst, eta, guidance

    assert dblm.S_MAX is units.S_MAX and targets.S_MAX is units.S_MAX
    assert guidance.MU is units.MU and guidance.LAM is units.LAM
    assert dblm.S_MIN is units.S_MIN and eta.ETA_SCALE is units.ETA_SCALE
    assert dsst.BETA_START is units.BETA_START and dsst.BETA_END is units.BETA_END
    pattern = re.compile(r"^(S_MAX|S_MIN|MU|LAM|BETA_START|BETA_END|ETA_SCALE)\s*=", re.M)
    defined = [str(p) for p in REPO.joinpath("src").rglob("*.py") if pattern.search(p.read_text())]
    assert defined == [str(REPO / "src" / "dynface" / "units.py")]
