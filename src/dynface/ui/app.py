"""The page: photos or a clip and settings on the left; before/after, the restored clip, faces
and what the method did on the right.

Also the named API endpoint `/restore` (photo first, every other input with a default; the
restored photo first out, the traces second) for `gradio_client` and scripts.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import torch

from dynface.background import CHOICES as BACKGROUND_CHOICES
from dynface.config import GUIDANCE_MODES
from dynface.errors import DynfaceError
from dynface.ui.jobs import (
    JobCancelled,
    JobProgress,
    JobResult,
    JobRunner,
    JobSettings,
    MethodChoices,
)
from dynface.ui.traces import SUMMARY_HEADERS, summary_rows
from dynface.ui.uploads import MAX_UPLOAD_AGE
from dynface.units import DEFAULT_FIDELITY, UPSCALE_MAX, UPSCALE_MIN
from dynface.video.io import VIDEO_SUFFIXES, is_video

INTRO = (
    "# dynface: face restoration that explains itself\n"
    "Upload a photo (or several) or a short video clip, press **Restore**. For every face you "
    "get the result and what the method decided: its blur level *s\\**, when the diffusion starts "
    "and where the guidance trusts the input (the DGSA map)."
)
RANDOM_WEIGHTS_NOTE = (
    "**Smoke-test networks** (random weights, `{config}`): the faces come out as flat patches, "
    "not restorations. "
    "Start `dynface ui` without `--config` after `dynface weights download` for real restorations."
)
METHOD_NOTE = (
    "The method's own levers, for experts (the fidelity slider above moves them together). "
    "Guidance pulls each step towards the input; DGSA decides where; eta is the "
    "noise re-injected per step (dynamic: set from the blur level)."
)
CSS = "#dynface-status {min-height: 2em}"


@dataclass(frozen=True)
class PageOptions:
    """What the page offers: the config's default steps and the samples used as examples."""

    config: str
    default_steps: str
    random_weights: bool
    examples: list[Path]
    method: MethodChoices
    #: The longest clip the server takes (shown on the upload).
    max_clip_seconds: float = 30.0


def device_choices() -> list[str]:
    """The devices this machine offers, "auto" first."""
    choices = ["auto", "cpu"]
    if torch.cuda.is_available():
        choices.append("cuda")
    if torch.backends.mps.is_available():
        choices.append("mps")
    return choices


def backend_choices() -> list[str]:
    """ "auto" and the runtimes installed here (torch always; ONNX Runtime, OpenVINO if present)."""
    from dynface.backends import available_backends

    return ["auto", *available_backends()]


def _dgsa_choices(configured: str) -> list[str]:
    """The config's DGSA map, the heuristic one and none (a learned map needs its weights)."""
    return list(dict.fromkeys([configured, "heuristic", "none"]))


def precision_choices() -> list[str]:
    """fp32 everywhere, bf16 on CPUs and GPUs, fp16 only with a GPU."""
    return ["fp32", "bf16"] + (["fp16"] if torch.cuda.is_available() else [])


class Controls:
    """The input components, in the order the handlers and `/restore` take them."""

    def __init__(self, options: PageOptions) -> None:
        self.aligned = gr.Checkbox(
            False,
            label="already aligned",
            info="The photos are square face crops (FFHQ-style); skip face detection.",
        )
        self.fidelity = _fidelity_slider()
        self.identity_guard = gr.Checkbox(
            False,
            label="identity guard",
            info="Check that each restored face is still the same person; restore one that "
            "drifted again at higher fidelity (0.75, then 1.0).",
            elem_id="dynface-identity-guard",
        )
        with gr.Accordion("Reference photos (optional)", open=False):
            self.references = gr.File(
                file_count="multiple",
                file_types=["image"],
                label="clear photos of the person: identity is measured against them",
                elem_id="dynface-references",
            )
        with gr.Accordion("Method", open=False):
            gr.Markdown(METHOD_NOTE)
            self.guidance, self.dgsa, self.eta = _method_controls(options.method)
        with gr.Accordion("Advanced", open=False):
            self.steps = _steps_dropdown(options.default_steps)
            with gr.Row():
                self.seed = gr.Number(0, label="seed", precision=0, minimum=0)
                self.random_seed = gr.Checkbox(True, label="random seed")
            self.upscale = gr.Slider(
                UPSCALE_MIN, UPSCALE_MAX, value=2, step=0.5, label="upscale (whole photo)"
            )
            self.background = _background_radio()
            self.only_center = gr.Checkbox(
                False, label="only the centre face", elem_id="dynface-only-center"
            )
            self.device, self.precision, self.backend = _runtime_controls()

    def settings_inputs(self, api: bool = False) -> list[gr.components.Component]:
        """Every setting, in the order of `settings_from` (for the `/restore` API, without the
        reference photos)."""
        every = [
            self.aligned,
            self.fidelity,
            self.guidance,
            self.dgsa,
            self.eta,
            self.steps,
            self.seed,
            self.random_seed,
            self.upscale,
            self.only_center,
            self.device,
            self.precision,
            self.backend,
            self.background,
            self.identity_guard,
            self.references,
        ]
        return every[:-1] if api else every


def _fidelity_slider() -> gr.Slider:
    """One lever from "trust the prior" (0) to "trust the input" (1); 0.5 is the paper."""
    return gr.Slider(
        0,
        1,
        value=DEFAULT_FIDELITY,
        step=0.05,
        label="fidelity",
        info="0: more detail from the prior (may drift from the person) · "
        "1: closer to the input (less invented detail) · 0.5: the method as published.",
        elem_id="dynface-fidelity",
    )


def _method_controls(defaults: MethodChoices) -> tuple[gr.Radio, gr.Radio, gr.Dropdown]:
    """The method's own levers: guidance, DGSA map and eta, preset from the config."""
    guidance = gr.Radio(list(GUIDANCE_MODES), value=defaults.guidance, label="guidance")
    dgsa = gr.Radio(
        _dgsa_choices(defaults.dgsa),
        value=defaults.dgsa,
        label="DGSA map",
        elem_id="dynface-dgsa",
    )
    eta = gr.Dropdown(
        ["dynamic", "0", "0.5", "1"],
        value=defaults.eta,
        label="eta",
        allow_custom_value=True,
    )
    return guidance, dgsa, eta


def _steps_dropdown(default_steps: str) -> gr.Dropdown:
    """The sampling steps: the config's (empty value) or a respacing typed or picked."""
    return gr.Dropdown(
        [(f"config default ({default_steps})", ""), "fast", "ddim25", "ddim50", "250"],
        value="",
        label="steps",
        info="fast: at most 14 steps (DPM-Solver++); ddimN: N evenly spaced steps.",
        allow_custom_value=True,
        elem_id="dynface-steps",
    )


def _background_radio() -> gr.Radio:
    """How the photo around the faces is enlarged."""
    return gr.Radio(
        list(BACKGROUND_CHOICES),
        value="auto",
        label="background upsampler",
        info="realesrgan: Real-ESRGAN (needs its weights) · none: bicubic · auto: "
        "Real-ESRGAN when its weights and a GPU are there.",
        elem_id="dynface-background",
    )


def _runtime_controls() -> tuple[gr.Radio, gr.Radio, gr.Radio]:
    """Where and how the networks run: device and precision side by side, then the backend."""
    with gr.Row():
        device = gr.Radio(device_choices(), value="auto", label="device")
        precision = gr.Radio(precision_choices(), value="fp32", label="precision")
    backend = gr.Radio(
        backend_choices(),
        value="auto",
        label="backend",
        info="auto: the fastest runtime installed for this device and precision.",
    )
    return device, precision, backend


def settings_from(
    aligned: bool,
    fidelity: float,
    guidance: str,
    dgsa: str,
    eta: str,
    steps: str | None,
    seed: float | None,
    random_seed: bool,
    upscale: float,
    only_center: bool,
    device: str,
    precision: str,
    backend: str,
    background: str = "auto",
    identity_guard: bool = False,
    references: list[str] | None = None,
) -> JobSettings:
    """The job settings from the control values (a random seed is drawn by the runner)."""
    return JobSettings(
        aligned=bool(aligned),
        fidelity=float(fidelity),
        steps=(steps or "").strip() or None,
        seed=None if random_seed or seed is None else _whole(seed),
        upscale=float(upscale),
        only_center_face=bool(only_center),
        device=device or "auto",
        precision=precision or "fp32",
        backend=backend or "auto",
        bg_upsampler=background or "auto",
        method=MethodChoices(guidance, dgsa, (eta or "dynamic").strip()),
        identity_guard=bool(identity_guard),
        references=tuple(Path(path) for path in references or ()),
    )


def _whole(number: float) -> Any:
    """A whole number as an int; anything else as given (NaN, 1.5: refused by the job check)."""
    return int(number) if float(number).is_integer() else number


#: The handlers' setting parameters: those of `settings_from`, in its order.
_SETTINGS_PARAMETERS = [
    parameter.replace(default=inspect.Parameter.empty)
    for parameter in inspect.signature(settings_from).parameters.values()
]
#: Those of the `/restore` API: reference photos are a page upload only (an optional file list
#: would be a required argument for API clients).
_API_SETTINGS_PARAMETERS = [p for p in _SETTINGS_PARAMETERS if p.name != "references"]
T = TypeVar("T")


def _settings_as_parameters(
    handler: Callable[..., T], settings_parameters: list[inspect.Parameter] = _SETTINGS_PARAMETERS
) -> Callable[..., T]:
    """Give a handler that takes `settings: JobSettings` one parameter per control instead.

    Gradio passes each input component as its own argument and names the `/restore` API's
    parameters after the handler's signature, so `settings` is spelled out there as the
    parameters of `settings_from` (without defaults: the components hold them); Gradio still
    injects `gr.Request` and `gr.Progress` from the annotations and defaults kept alongside.
    """
    own = inspect.signature(handler)
    parameters: list[inspect.Parameter] = []
    for parameter in own.parameters.values():
        parameters.extend(settings_parameters if parameter.name == "settings" else [parameter])
    signature = own.replace(parameters=parameters)

    @functools.wraps(handler)
    def expanded(*args: Any, **kwargs: Any) -> T:
        arguments = signature.bind(*args, **kwargs).arguments
        values = {
            parameter.name: arguments.pop(parameter.name) for parameter in settings_parameters
        }
        return handler(**arguments, settings=settings_from(**values))

    expanded.__signature__ = signature  # type: ignore[attr-defined]
    expanded.__annotations__ = {
        parameter.name: parameter.annotation
        for parameter in parameters
        if parameter.annotation is not inspect.Parameter.empty
    } | {"return": own.return_annotation}
    return expanded


class Handlers:
    """Event handlers: run a job for a browser session, cancel it, show one photo."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        self._cancels: dict[str, threading.Event] = {}

    @_settings_as_parameters
    def restore(
        self,
        photos: list[str] | None,
        settings: JobSettings,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, ...]:
        """The Restore button: run the job, fill every output."""
        result = self._run(photos or [], settings, request, progress)
        names = [photo.name for photo in result.photos]
        first = result.photos[0] if result.photos else None
        clip = result.clips[0] if result.clips else None
        return (
            _status(result),
            gr.Dropdown(choices=names, value=names[0] if names else None, visible=len(names) > 1),
            gr.ImageSlider(
                (str(first.before), str(first.after)) if first else None, visible=bool(first)
            ),
            gr.Gallery(_face_gallery(result), visible=bool(result.photos)),
            None if result.trace_sheet is None else str(result.trace_sheet),
            _trace_table(result),
            _downloads(result),
            gr.Video(str(clip.preview) if clip else None, visible=bool(clip)),
            {photo.name: (str(photo.before), str(photo.after)) for photo in result.photos},
        )

    @functools.partial(_settings_as_parameters, settings_parameters=_API_SETTINGS_PARAMETERS)
    def restore_api(
        self, photo: str | None, settings: JobSettings, request: gr.Request
    ) -> tuple[str, dict[str, Any]]:
        """`/restore`: one photo in; the restored photo and its traces out."""
        if photo and is_video(photo):
            raise user_error("/restore takes one photo; restore clips on the page", "A photo")
        result = self._run([photo] if photo else [], settings, request, None)
        restored = result.photos[0]
        traces = {
            "seed": result.seed,
            "device": result.device,
            "backends": result.backends,
            "random_weights": result.random_weights,
            "faces": [face.trace for face in restored.faces],
        }
        return str(restored.final), traces

    def cancel(self, request: gr.Request) -> str:
        """The Cancel button: the running job of this browser session stops at its next step."""
        event = self._cancels.get(request.session_hash or "")
        if event is None:
            return "Nothing to cancel."
        event.set()
        return "Cancelled: the job stops at its next denoising step and keeps no result."

    def _run(
        self,
        photos: list[str],
        settings: JobSettings,
        request: gr.Request,
        progress: gr.Progress | None,
    ) -> JobResult:
        """Run one job; every failure becomes a `gr.Error` with the user-facing message."""
        cancel = threading.Event()
        session = request.session_hash or ""
        self._cancels[session] = cancel

        def report(state: JobProgress, text: str) -> None:
            if progress is None:
                return
            if state.stage:
                progress((state.frames_done, state.frames_total or None), desc=text, unit="frames")
            else:
                total = state.steps_total or None
                progress((state.steps_done, total), desc=text, unit="face-steps")

        try:
            result = self.runner.run(photos, settings, report, cancel)
        except JobCancelled as exc:
            raise user_error(f"Cancelled: {exc}.", "Cancelled") from None
        except DynfaceError as exc:
            raise user_error(str(exc), "Could not restore") from None
        finally:
            if self._cancels.get(session) is cancel:
                del self._cancels[session]
        for line in result.failures:
            gr.Warning(line)
        return result


def user_error(message: str, title: str) -> gr.Error:
    """The error a user sees for what they asked (a message, no traceback); the server log gets
    one line, not Gradio's traceback of an ordinary refusal."""
    print(f"dynface ui: {title.lower()}: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return gr.Error(message.replace("\n", "<br>"), title=title, print_exception=False)


def _status(result: JobResult) -> str:
    """One line under the title: what ran, with which seed, and anything to know."""
    done = []
    if result.photos:
        faces = sum(len(photo.faces) for photo in result.photos)
        done.append(f"{faces} face(s) in {len(result.photos)} photo(s)")
    for clip in result.clips:
        done.append(
            f"{clip.faces_restored} face(s) over {clip.frames} frames of {clip.final.name} "
            f"({clip.tracks} face track(s))"
        )
    seconds = sum(photo.seconds for photo in result.photos)
    seconds += sum(clip.seconds for clip in result.clips)
    text = (
        f"Restored {' and '.join(done)} in {seconds:.1f} s on "
        f"{result.device} ({result.backends}); seed {result.seed} (set it under Advanced to "
        "repeat this result)."
    )
    if result.failures:
        text += " Not restored: " + "; ".join(result.failures)
    text += _identity_status(result)
    if result.random_weights:
        text += " Random smoke-test networks: the faces are flat patches, not restorations."
    return text


def _identity_status(result: JobResult) -> str:
    """What the status line says of identity: the faces not confirmed or not measured."""
    verdicts = [
        (face.trace or {}).get("identity", {}).get("verdict", "not measured")
        for photo in result.photos
        for face in photo.faces
    ]
    text = ""
    if "not confirmed" in verdicts:
        text += f" Identity not confirmed for {verdicts.count('not confirmed')} face(s)."
    if "not measured" in verdicts:
        text += f" Identity not measured for {verdicts.count('not measured')} face(s)."
    return text


def _downloads(result: JobResult) -> list[str]:
    """Each restored photo and clip, then the zip of everything."""
    files = [photo.final for photo in result.photos] + [clip.final for clip in result.clips]
    return [str(path) for path in [*files, result.archive]]


def _face_gallery(result: JobResult) -> list[tuple[str, str]]:
    """Each face before and after, in order."""
    items = []
    for photo in result.photos:
        for face in photo.faces:
            label = f"{photo.name} · face {face.index + 1}"
            items.append((str(face.cropped), f"{label}: before"))
            items.append((str(face.restored), f"{label}: after · {identity_badge(face.trace)}"))
    return items


def identity_badge(trace: dict[str, Any] | None) -> str:
    """The identity verdict of one face, short enough for a gallery caption."""
    identity = (trace or {}).get("identity") or {"verdict": "not measured"}
    if identity["verdict"] == "same person":
        return f"✓ same person ({identity['distance']:.2f})"
    if identity["verdict"] == "not confirmed":
        return f"⚠ identity not confirmed ({identity['distance']:.2f})"
    return "identity not measured"


def _trace_table(result: JobResult) -> list[list[str]]:
    """One row of numbers per face."""
    return summary_rows(
        [(photo.name, face.index, face.trace) for photo in result.photos for face in photo.faces]
    )


def build_app(runner: JobRunner, options: PageOptions) -> gr.Blocks:
    """The whole page and its events; one job at a time, others wait in the queue."""
    handlers = Handlers(runner)
    with gr.Blocks(title="dynface", delete_cache=(300, MAX_UPLOAD_AGE)) as app:
        gr.Markdown(INTRO)
        if options.random_weights:
            gr.Markdown(RANDOM_WEIGHTS_NOTE.format(config=options.config))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                inputs = _inputs(options)
            with gr.Column(scale=2):
                outputs = _outputs()
        _page_events(handlers, inputs, outputs)
        _api_endpoint(handlers, inputs.controls.settings_inputs(api=True))
    return app


@dataclass(frozen=True)
class _Inputs:
    """The left column: the photos (and clips), every setting and the two buttons."""

    photos: gr.File
    controls: Controls
    restore: gr.Button
    cancel: gr.Button


def _inputs(options: PageOptions) -> _Inputs:
    """Photos and clips, settings, Restore/Cancel and the samples that preset them, top to
    bottom. One upload takes both: users drop what they have, the runner tells them apart."""
    photos = gr.File(
        label=f"photos or a clip (up to {options.max_clip_seconds:g} s)",
        file_count="multiple",
        file_types=["image", *VIDEO_SUFFIXES],
        type="filepath",
        elem_id="dynface-photos",
    )
    controls = Controls(options)
    with gr.Row():
        restore = gr.Button("Restore", variant="primary", elem_id="dynface-restore")
        cancel = gr.Button("Cancel", variant="stop", elem_id="dynface-cancel")
    if options.examples:
        gr.Examples(
            examples=_examples(options.examples, options.method),
            inputs=[photos, *controls.settings_inputs()],
            label="samples (public domain; also set the controls)",
            example_labels=_example_labels(options.examples),
        )
    return _Inputs(photos, controls, restore, cancel)


def _page_events(handlers: Handlers, inputs: _Inputs, outputs: list[Any]) -> None:
    """Restore fills the outputs, Cancel stops it, the photo picker switches the slider."""
    run = inputs.restore.click(
        handlers.restore,
        inputs=[inputs.photos, *inputs.controls.settings_inputs()],
        outputs=outputs,
        api_name="restore_page",
        concurrency_id="device",
        concurrency_limit=1,
        api_visibility="private",
    )
    inputs.cancel.click(
        handlers.cancel,
        outputs=outputs[0],
        cancels=[run],
        queue=False,
        api_name="cancel",
        api_visibility="private",
    )
    selector, slider, state = outputs[1], outputs[2], outputs[-1]
    selector.change(
        lambda name, pairs: pairs.get(name),
        inputs=[selector, state],
        outputs=slider,
        api_name="show_photo",
        api_visibility="private",
    )


def _outputs() -> list[Any]:
    """Result components: status, photo picker, slider, faces, traces, table, downloads, the
    clip, state."""
    status = gr.Markdown(elem_id="dynface-status")
    clip = gr.Video(
        label="restored clip (with its sound; download it below)",
        visible=False,
        interactive=False,
        height=400,
        elem_id="dynface-clip",
    )
    selector = gr.Dropdown(label="photo", visible=False, interactive=True)
    slider = gr.ImageSlider(
        label="before / after (drag)", type="filepath", format="png", elem_id="dynface-slider"
    )
    faces = gr.Gallery(
        label="faces: before and after",
        columns=4,
        height=300,
        object_fit="contain",
        elem_id="dynface-faces",
    )
    with gr.Accordion("What the method decided", open=True):
        gr.Markdown(
            "Per face: the DGSA map (how strongly each pixel is pulled towards the input) as a "
            "heat map over the face, and the diffusion from noise (t = 1000) to the face "
            "(t = 0): where sampling starts and from which step each guide image acts."
        )
        traces = gr.Image(
            label="trace pictures",
            show_label=False,
            type="filepath",
            format="png",
            elem_id="dynface-traces",
        )
        table = gr.Dataframe(
            headers=SUMMARY_HEADERS,
            label="trace numbers",
            interactive=False,
            wrap=True,
            column_widths=["18%", "5%", "8%", "8%", "7%", "14%", "15%", "9%", "8%", "8%"],
        )
    downloads = gr.File(
        label="downloads: photos, clips and a zip of faces and traces",
        file_count="multiple",
        elem_id="dynface-downloads",
    )
    return [status, selector, slider, faces, traces, table, downloads, clip, gr.State({})]


def _examples(samples: list[Path], defaults: MethodChoices) -> list[list[Any]]:
    """Sample photos with the controls they preset (aligned, steps, seed, random, upscale, ...)."""
    presets = [(DEFAULT_FIDELITY, "", 2.0, False), (0.8, "ddim50", 1.0, True)]
    method = [defaults.guidance, defaults.dgsa, defaults.eta]
    rows = []
    for k, sample in enumerate(samples):
        fidelity, steps, upscale, only_center = presets[k % len(presets)]
        rows.append(
            [
                [str(sample)],
                False,
                fidelity,
                *method,
                steps,
                0,
                False,
                upscale,
                only_center,
                "auto",
                "fp32",
                "auto",
                "auto",
            ]
        )
    return rows


def _example_labels(samples: list[Path]) -> list[str]:
    """What each example presets, in words."""
    words = ["fidelity 0.5, config steps, x2", "fidelity 0.8, ddim50, centre face only, x1"]
    return [f"{sample.stem}: {words[k % len(words)]}" for k, sample in enumerate(samples)]


def _api_endpoint(handlers: Handlers, settings: list[Any]) -> None:
    """`/restore`: a hidden photo input with the page's settings; the photo and traces out."""
    photo = gr.File(label="photo", file_count="single", type="filepath", visible=False)
    restored = gr.File(label="restored photo", visible=False)
    traces = gr.JSON(label="traces", visible=False)
    trigger = gr.Button(visible=False)
    trigger.click(
        handlers.restore_api,
        inputs=[photo, *settings],
        outputs=[restored, traces],
        api_name="restore",
        api_description="Restore every face of one photo; returns the photo and the traces.",
        concurrency_id="device",
        concurrency_limit=1,
    )
