"""`dynface ui`: serve the web UI (Gradio) on this machine; the UI code loads only when run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from dynface.cli.restore import ConfigOption, WeightsDirOption

EPILOG = (
    "Example: dynface ui   then open the address it prints (http://127.0.0.1:7860).\n\n"
    "Without weights: dynface ui --config tiny-random (the faces come out as flat patches). "
    "To reach it from other machines: dynface ui --listen --auth alice:secret. Needs the ui extra: "
    'pip install "dynface\\[ui]". See docs/ui.md.'
)

PortOption = Annotated[
    int | None,
    typer.Option(min=1, max=65535, help="Port (default: 7860, or the next free one)."),
]
ListenOption = Annotated[
    bool,
    typer.Option("--listen", help="Accept connections from other machines (binds 0.0.0.0)."),
]
AuthOption = Annotated[
    str | None,
    typer.Option(
        envvar="DYNFACE_UI_AUTH",
        help="Ask for a login, as user:password (or set DYNFACE_UI_AUTH, kept out of `ps`).",
    ),
]
ShareOption = Annotated[
    bool,
    typer.Option("--share", help="Also publish a public *.gradio.live link (needs the internet)."),
]
MaxPhotosOption = Annotated[int, typer.Option(min=1, help="Most photos in one request.")]
MaxMegapixelsOption = Annotated[float, typer.Option(min=0.1, help="Largest photo accepted (MP).")]
MaxClipSecondsOption = Annotated[
    float, typer.Option(min=0.1, help="Longest video clip accepted (seconds).")
]
MaxClipFramesOption = Annotated[int, typer.Option(min=1, help="Most frames in a video clip.")]
MaxFileMbOption = Annotated[int, typer.Option(min=1, help="Largest upload accepted (MB).")]
MaxUploadsMbOption = Annotated[
    int,
    typer.Option(
        min=1, help="Most the upload folder may hold (MB, kept 30 minutes); more is refused."
    ),
]
QueueSizeOption = Annotated[
    int, typer.Option(min=1, help="Requests that may wait; more are refused.")
]
OpenOption = Annotated[bool, typer.Option("--open", help="Open the page in a browser.")]


def ui(
    config: ConfigOption = "default",
    weights_dir: WeightsDirOption = None,
    port: PortOption = None,
    listen: ListenOption = False,
    auth: AuthOption = None,
    share: ShareOption = False,
    max_photos: MaxPhotosOption = 8,
    max_megapixels: MaxMegapixelsOption = 40.0,
    max_clip_seconds: MaxClipSecondsOption = 30.0,
    max_clip_frames: MaxClipFramesOption = 900,
    max_file_mb: MaxFileMbOption = 50,
    max_uploads_mb: MaxUploadsMbOption = 2000,
    queue_size: QueueSizeOption = 8,
    open_browser: OpenOption = False,
) -> None:
    """Serve the web UI: restore photos and clips, compare before/after, see what the method
    decided.

    Binds 127.0.0.1 (this machine only) unless --listen; one job runs at a time, the others
    wait in a bounded queue; uploads stay in a temporary folder removed when it stops.
    """
    _check_config(config)
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
            max_clip_seconds=max_clip_seconds,
            max_clip_frames=max_clip_frames,
            max_file_mb=max_file_mb,
            max_uploads_mb=max_uploads_mb,
            queue_size=queue_size,
            open_browser=open_browser,
        )
    )


def _check_config(config: str) -> None:
    """A config that does not load is a usage error, before Gradio is imported."""
    from dynface.config import ConfigError, load_config

    try:
        load_config(config)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None


def _parse_auth(auth: str | None) -> tuple[str, str] | None:
    """ "user:password" as a pair; anything else is a usage error."""
    if auth is None or auth == "":
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise typer.BadParameter("use user:password, e.g. --auth alice:secret", param_hint="--auth")
    return user, password
