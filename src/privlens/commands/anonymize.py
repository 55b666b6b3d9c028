"""``privlens anonymize``: every face of photos, folders, videos or a webcam replaced in place."""

from __future__ import annotations

from pathlib import Path

import typer

from privlens.commands.common import check_seed, console, err_console, fail, skipped, warn


def anonymize(
    source: Path | None = typer.Argument(
        None, help="An image, a folder (images and videos below it) or a video (not with --webcam)."
    ),
    run: Path | None = typer.Option(
        None, "--run", help="Stage II run folder (lens, U, generator), or Stage I (with --generator warp)."
    ),
    lens: str | None = typer.Option(None, "--lens", "-l", help="Lens file or preset; overrides --run."),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="Heatmap network U (.safetensors)."),
    generator: str | None = typer.Option(
        None,
        "--generator",
        "-g",
        help="Generator bundle (generator.safetensors), 'shipped' (the shipped generator, behind the shipped "
        "lens and U), or 'warp' (no GAN).",
    ),
    reference: Path | None = typer.Option(
        None, "--reference", "-r", help="Reference face image or folder whose identities are borrowed."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (with --webcam: a .mp4/.avi file, or omit it with --show)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the reference, latent and domain choices."),
    reference_choice: str = typer.Option(
        "seeded",
        "--reference-choice",
        help="'seeded' draws each face's reference; 'far' (not with --latent) warps every reference onto the "
        "face's decoded geometry and takes the one farthest (dlib) from the identity that geometry alone "
        "implies: more faces end far from their source, at one dlib embedding per reference and face.",
    ),
    sensor_noise: bool = typer.Option(
        True,
        "--sensor-noise/--no-sensor-noise",
        help="Simulate the sensor as a real camera stores its captures: shot and read noise at the lens "
        "file's light, quantised (seeded by --seed). --no-sensor-noise: the noise-free optical image.",
    ),
    latent: bool = typer.Option(False, "--latent", help="Styles from random latents (GAN mapping network)."),
    domain: str | None = typer.Option(None, "--domain", help="Generator domain (GAN only), e.g. female."),
    size: int | None = typer.Option(
        None, "--size", help="The models' image side; default: what the model files say, else 256."
    ),
    detector: str = typer.Option("mtcnn", "--detector", help="Face detector: mtcnn, dlib or dlib-cnn."),
    min_face: float = typer.Option(24.0, "--min-face", help="Smallest face to replace, width in pixels."),
    detect_side: int = typer.Option(
        960, "--detect-side", help="Detect on a copy shrunk to this longer side (pixels)."
    ),
    check: bool = typer.Option(
        True, "--check/--no-check", help="Pixelate a new face in which no face is found."
    ),
    skip_no_face: bool = typer.Option(
        False, "--skip-no-face", help="Leave photos without a face out (default: copied unchanged)."
    ),
    detect_every: int = typer.Option(
        5, "--detect-every", help="Videos: detect every k frames, track between."
    ),
    smoothing: float = typer.Option(0.5, "--smoothing", help="Videos: landmark smoothing (1 = none)."),
    webcam: int | None = typer.Option(None, "--webcam", help="Anonymise this webcam (OpenCV index)."),
    show: bool = typer.Option(True, "--show/--no-show", help="Webcam: show the result in a window."),
    batch_size: int = typer.Option(16, "--batch-size", help="Face crops per forward pass."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing output files (never an input)."
    ),
    device: str = typer.Option("cpu", "--device", help="torch device (cpu, cuda, cuda:1, ...)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    allow_identifiable: bool = typer.Option(
        False, "--allow-identifiable", help="Run a lens whose captures keep faces recognisable (open)."
    ),
) -> None:
    """Replace every face: detect, align, camera -> U -> new face (GAN or warp), blend back.

    A face that cannot be replaced is pixelated and listed; the manifest anonymize.json says what
    was done to each face.
    """
    import torch

    from privlens.anonymize.jobs import AnonymizeJob
    from privlens.anonymize.models import resolve_models
    from privlens.anonymize.pipeline import AnonymizeError

    check_seed(seed)
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {device}: CUDA is not available on this machine")
    if (source is None) == (webcam is None):
        fail("give either a SOURCE (image, folder or video) or --webcam N")
    if webcam is None and out is None:
        fail("give the output folder: --out DIR")
    if webcam is not None and out is not None and out.suffix.lower() not in (".mp4", ".avi"):
        fail(f"--webcam writes a video: --out must end in .mp4 or .avi, got {out.name!r}")
    try:
        models = resolve_models(run, lens, heatmap, generator)
        _check_privacy(models.lens, allow_identifiable)  # privlens.outputs: `open` needs the flag
        job = AnonymizeJob(
            models,
            reference,
            size=size,
            seed=seed,
            latent=latent,
            domain=domain,
            batch_size=batch_size,
            device=device,
            log=lambda message: err_console.print(f"[yellow]{message}[/]"),
            detector=detector,
            min_face=min_face,
            detect_side=detect_side,
            check=check,
            skip_no_face=skip_no_face,
            detect_every=detect_every,
            smoothing=smoothing,
            reference_choice=reference_choice,
            sensor_noise=sensor_noise,
        )
        if webcam is not None:
            _webcam(job, webcam, out, show)
            return
        report = job.run(source, out, progress=progress, overwrite=overwrite)
    except (AnonymizeError, ValueError) as error:
        fail(str(error))
    if source.is_file() and not report.done and report.skipped:  # the one input given is unreadable
        fail(report.skipped[0][1])
    for path, reason in report.skipped:
        skipped(path, reason)
    for notice in report.notices:
        err_console.print(f"[yellow]notice[/] {notice}", highlight=False)
    console.print(
        f"anonymised {len(report.done)} input(s) with the {models.backend} backend into {out}: "
        f"{report.replaced} face(s) replaced, {report.pixelated} pixelated",
        highlight=False,
    )
    if report.manifest is not None:
        console.print(f"manifest: {report.manifest}", highlight=False)
    if not report.done:
        raise typer.Exit(code=1)


def _check_privacy(lens: str, allowed: bool) -> None:
    """Refuse (unless ``allowed``) and warn about a lens whose captures keep faces recognisable."""
    from privlens.optics.presets import make_camera
    from privlens.outputs import identifiable_warning, require_allow_identifiable

    camera = make_camera(lens, 32)  # only to read its coefficients and sensor
    require_allow_identifiable(lens, allowed, camera)
    warning = identifiable_warning(lens, camera)
    if warning:
        warn(warning)


def _webcam(job, index: int, out: Path | None, show: bool) -> None:
    from privlens.anonymize.stream import FrameStream
    from privlens.anonymize.webcam import run_webcam

    planner = job.planner()
    stream = FrameStream(job.pipeline, lambda: job.next_slot(planner), job.detect_every, job.smoothing)
    frames = run_webcam(stream, index, out, show)
    console.print(f"webcam {index}: {frames} frame(s) anonymised" + (f" into {out}" if out else ""))
