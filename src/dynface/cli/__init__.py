"""The `dynface` command: one Typer app, each sub-command group in its own module."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def tidy_help(command: TyperCommand | TyperGroup) -> None:
    """Conventional help for every sub-command: no `<bool>` after flags, `PHOTO...` in usage.

    Typer shows a type after flags that take no value and `{inputs}...` for arguments; here a
    flag shows nothing and an argument shows its upper-case name (in brackets when optional).
    """
    for param in command.params:
        if param.param_type_name == "option" and getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.param_type_name == "argument":
            name = (param.metavar or param.name or "ARG").upper()
            usage = name if param.required else f"[{name}]"
            usage += "..." if param.nargs != 1 else ""
            param.metavar = name
            param.get_usage_pieces = lambda ctx, usage=usage: [usage]  # type: ignore[method-assign]
    help_option = command.get_help_option(typer.Context(command))
    if help_option is not None:
        help_option.metavar = ""
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            tidy_help(sub)


class TidyGroup(TyperGroup):
    """The root command: tidies the help of every sub-command before it runs (see tidy_help)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        tidy_help(self)
        return super().main(*args, **kwargs)


app = typer.Typer(
    name="dynface",
    cls=TidyGroup,
    help=(
        "Blind face restoration with a diffusion prior and dynamic blur-level guidance "
        "(DynFaceRestore).\n\nStart with `dynface weights download`, then "
        "`dynface restore PHOTO -o results/`."
    ),
    epilog=(
        "Examples:  dynface demo -o results/  ·  dynface restore photos/ -o results/  ·  "
        "dynface COMMAND --help\n\n"
        "Exit status: 0 done, 1 failed (some inputs or files), 2 usage error. See docs/cli.md."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    """Eager --version: print and exit before a command is required."""
    if value:
        from dynface import __version__

        typer.echo(f"dynface {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version."
    ),
) -> None:
    """Blind face restoration (see the commands below)."""


def main() -> None:
    """Entry point of the console script: system errors end in one line, not a traceback."""
    from dynface.errors import DynfaceError

    try:
        app(prog_name="dynface")
    except DynfaceError as exc:
        # Raised on purpose with a sentence for users: the class decides the exit status.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # Disk full, permission denied, a file vanishing mid-run: the user's environment, not a bug.
        print(f"error: {exc}; check the path, its permissions and free space", file=sys.stderr)
        sys.exit(1)


from dynface.cli import degrade, demo, dsst, evaluate, restore, train, ui, weights  # noqa: E402, I001

app.add_typer(weights.app, name="weights")
app.add_typer(dsst.app, name="dsst")
app.command("restore", epilog=restore.EPILOG)(restore.restore)
app.command("demo", epilog=demo.EPILOG)(demo.demo)
app.add_typer(evaluate.app, name="eval")
app.command("degrade", epilog=degrade.EPILOG)(degrade.degrade)
app.command("train", epilog=train.EPILOG)(train.train)
app.command("ui", epilog=ui.EPILOG)(ui.ui)
