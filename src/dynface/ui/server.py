"""Start the web UI safely: localhost unless asked, optional login, private temporary folders.

Uploads, Gradio's cache and our job folders all live in one temporary folder made for this
server and removed when it stops (Ctrl+C or SIGTERM); Gradio only serves files from there, so no
other path on the server can be read through the UI. Analytics and update checks are off: the
server makes no outside connection unless `share` is asked for.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCALHOST = "127.0.0.1"
EVERYWHERE = "0.0.0.0"


@dataclass(frozen=True)
class ServerOptions:
    """How `dynface ui` runs (the CLI options)."""

    config: str = "default"
    weights_dir: Path | None = None
    port: int | None = None
    listen: bool = False
    auth: tuple[str, str] | None = None
    share: bool = False
    max_photos: int = 8
    max_megapixels: float = 40.0
    max_clip_seconds: float = 30.0
    max_clip_frames: int = 900
    max_file_mb: int = 50
    max_uploads_mb: int = 2000
    queue_size: int = 8
    open_browser: bool = False


def security_warnings(options: ServerOptions) -> list[str]:
    """What the user must know when the UI can be reached from other machines."""
    warnings = []
    if options.listen:
        warnings.append(
            "--listen: the web UI accepts connections from other machines on this port; anyone "
            "who reaches it can upload photos and use this machine's CPU/GPU"
        )
    if options.share:
        warnings.append(
            "--share: Gradio makes a public *.gradio.live link to this machine; anyone with the "
            "link can use it until you stop the server"
        )
    if warnings and options.auth is None:
        warnings.append("no --auth set: add --auth user:password to ask for a login")
    return warnings


def serve(options: ServerOptions) -> None:
    """Build the page and serve it until Ctrl+C; the temporary folder is removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="dynface-ui-"))
    _private_gradio_folders(root)
    for line in security_warnings(options):
        print(f"warning: {line}", file=sys.stderr)
    print(f"dynface ui: temporary files in {root} (removed on exit)", file=sys.stderr)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        app = _build(options, root)
        app.queue(max_size=options.queue_size, default_concurrency_limit=1)
        _, local_url, share_url = app.launch(**launch_arguments(options, root / "uploads"))
        print(f"dynface ui: open {local_url} (Ctrl+C stops it)", flush=True)
        if share_url:
            print(f"dynface ui: public link {share_url}", flush=True)
        app.block_thread()
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(root, ignore_errors=True)


def launch_arguments(options: ServerOptions, uploads: Path) -> dict[str, Any]:
    """Arguments of `gradio.Blocks.launch`: the safe defaults and what the options ask for;
    the upload folder `uploads` is kept under --max-uploads-mb and MAX_UPLOAD_AGE."""
    import gradio as gr
    from starlette.middleware import Middleware

    from dynface.ui.uploads import MAX_UPLOAD_AGE, UploadGuard

    theme = gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )
    return {
        "server_name": EVERYWHERE if options.listen else LOCALHOST,
        "server_port": options.port,
        "auth": options.auth,
        "share": options.share,
        "inbrowser": options.open_browser,
        "max_file_size": f"{options.max_file_mb}mb",
        "app_kwargs": {
            "middleware": [
                Middleware(
                    UploadGuard,
                    folder=uploads,
                    max_bytes=options.max_uploads_mb * 1_000_000,
                    max_age=MAX_UPLOAD_AGE,
                )
            ]
        },
        "allowed_paths": [],
        "show_error": True,
        "quiet": True,
        "prevent_thread_lock": True,
        "ssr_mode": False,
        "pwa": False,
        "mcp_server": False,
        "enable_monitoring": False,
        "footer_links": ["api"],
        "theme": theme,
        "css": _css(),
    }


def _private_gradio_folders(root: Path) -> None:
    """Point Gradio's upload folder and example cache into `root`; no analytics, no checks."""
    os.environ["GRADIO_TEMP_DIR"] = str(root / "uploads")
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(root / "examples")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM stops the server like Ctrl+C, so the temporary folder is cleaned up."""
    raise KeyboardInterrupt


def _build(options: ServerOptions, root: Path) -> Any:
    """The runner and the page (imports Gradio only now, after its folders are set)."""
    from dynface.cli.demo import sample_photos_dir
    from dynface.config import load_config
    from dynface.ui.app import PageOptions, build_app
    from dynface.ui.clips import ClipLimits
    from dynface.ui.jobs import JobRunner, Limits, MethodChoices

    config = load_config(options.config)
    clips = ClipLimits(max_seconds=options.max_clip_seconds, max_frames=options.max_clip_frames)
    limits = Limits(options.max_photos, options.max_megapixels, clips)
    runner = JobRunner(options.config, root / "jobs", options.weights_dir, limits)
    random_weights = "random" in (config["prior"]["weights"], config["restorer"]["weights"])
    page = PageOptions(
        config=options.config,
        default_steps=str(config["diffusion"].get("respacing", "")),
        random_weights=random_weights,
        examples=sorted(sample_photos_dir().glob("*.jpg")),
        method=MethodChoices.from_config(config["method"]),
        max_clip_seconds=options.max_clip_seconds,
    )
    return build_app(runner, page)


def _css() -> str:
    from dynface.ui.app import CSS

    return CSS
