"""The exception family: the CLI's exit status follows the class of the error raised."""

from __future__ import annotations

import pytest

from dynface.cli import main
from dynface.errors import DynfaceError, ResourceError, UsageError


@pytest.mark.parametrize(("error", "code"), [(UsageError, 2), (ResourceError, 1)])
def test_cli_exit_status_follows_error_class(monkeypatch, capsys, error, code) -> None:
    def fail(**_: object) -> None:
        raise error("the sentence a user reads")

    monkeypatch.setattr("dynface.cli.app", fail)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == code
    assert capsys.readouterr().err.strip() == "error: the sentence a user reads"


def test_usage_and_resource_errors_stay_catchable_as_builtin_kinds() -> None:
    assert issubclass(UsageError, ValueError) and issubclass(UsageError, DynfaceError)
    assert issubclass(ResourceError, RuntimeError) and issubclass(ResourceError, DynfaceError)
