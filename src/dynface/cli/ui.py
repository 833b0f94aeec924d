"""`dynface ui`: serve the web UI (Gradio) on this machine; the UI code loads only when run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from dynface.cli.restore import ConfigOption, WeightsDirOption

EPILOG = (
    "Example: dynface ui   then open the address it prints (http://127.0.0.1:7860).\n\n"
    "Without weights: dynface ui --config tiny-random (the faces come out as noise). To reach "
    "it from other machines: dynface ui --listen --auth alice:secret. Needs the ui extra: "
    'pip install "dynface\\[ui]". See docs/ui.md.'
)


def ui(
    config: ConfigOption = "default",
    weights_dir: WeightsDirOption = None,
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Port (default: 7860, or the next free one)."
    ),
    listen: bool = typer.Option(
        False, "--listen", help="Accept connections from other machines (binds 0.0.0.0)."
    ),
    auth: str | None = typer.Option(
        None,
        envvar="DYNFACE_UI_AUTH",
        help="Ask for a login, as user:password (or set DYNFACE_UI_AUTH, kept out of `ps`).",
    ),
    share: bool = typer.Option(
        False, "--share", help="Also publish a public *.gradio.live link (needs the internet)."
    ),
    max_photos: int = typer.Option(8, min=1, help="Most photos in one request."),
    max_megapixels: float = typer.Option(40.0, min=0.1, help="Largest photo accepted (MP)."),
    max_file_mb: int = typer.Option(50, min=1, help="Largest upload accepted (MB)."),
    queue_size: int = typer.Option(8, min=1, help="Requests that may wait; more are refused."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
) -> None:
    """Serve the web UI: restore photos, compare before/after, see what the method decided.

    Binds 127.0.0.1 (this machine only) unless --listen; one job runs at a time, the others
    wait in a bounded queue; uploads stay in a temporary folder removed when it stops.
    """
    from dynface.config import ConfigError, load_config

    try:
        load_config(config)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None
    credentials = _parse_auth(auth)
    if importlib.util.find_spec("gradio") is None:
        raise typer.BadParameter('the web UI needs Gradio: pip install "dynface[ui]"')
    from dynface.ui.server import ServerOptions, serve

    serve(
        ServerOptions(
            config=config,
            weights_dir=Path(weights_dir) if weights_dir else None,
            port=port,
            listen=listen,
            auth=credentials,
            share=share,
            max_photos=max_photos,
            max_megapixels=max_megapixels,
            max_file_mb=max_file_mb,
            queue_size=queue_size,
            open_browser=open_browser,
        )
    )


def _parse_auth(auth: str | None) -> tuple[str, str] | None:
    """ "user:password" as a pair; anything else is a usage error."""
    if auth is None or auth == "":
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise typer.BadParameter("use user:password, e.g. --auth alice:secret", param_hint="--auth")
    return user, password
