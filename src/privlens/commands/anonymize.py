"""``privlens anonymize``: new faces for images, folders and videos, seen only through the camera."""

from __future__ import annotations

from pathlib import Path

import typer

from privlens.commands.common import console, err_console, fail


def anonymize(
    source: Path = typer.Argument(..., help="An image, a folder (images and videos below it) or a video."),
    run: Path | None = typer.Option(
        None, "--run", help="Stage II run folder (lens, U, generator), or Stage I (with --generator warp)."
    ),
    lens: str | None = typer.Option(None, "--lens", "-l", help="Lens file or preset; overrides --run."),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="Heatmap network U (.safetensors)."),
    generator: str | None = typer.Option(
        None, "--generator", "-g", help="Generator bundle (generator.safetensors), or 'warp' (no GAN)."
    ),
    reference: Path | None = typer.Option(
        None, "--reference", "-r", help="Reference face image or folder whose identities are borrowed."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    num_refs: int = typer.Option(1, "--num-refs", "-n", help="New faces per input."),
    seed: int = typer.Option(0, "--seed", help="Seed of the reference, latent and domain choices."),
    latent: bool = typer.Option(False, "--latent", help="Styles from random latents (GAN mapping network)."),
    domain: str | None = typer.Option(None, "--domain", help="Generator domain (GAN only), e.g. female."),
    size: int | None = typer.Option(
        None, "--size", help="Image side; default: the generator's, else the lens file's, else 256."
    ),
    batch_size: int = typer.Option(8, "--batch-size", help="Images or video frames per forward pass."),
    device: str = typer.Option("cpu", "--device", help="torch device (cpu, cuda, cuda:1, ...)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Anonymise faces: camera capture -> heatmap U -> a new face from a reference (GAN or warp)."""
    import torch

    from privlens.anonymize.jobs import AnonymizeJob
    from privlens.anonymize.models import resolve_models
    from privlens.anonymize.pipeline import AnonymizeError

    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {device}: CUDA is not available on this machine")
    try:
        models = resolve_models(run, lens, heatmap, generator)
        job = AnonymizeJob(
            models,
            reference,
            size=size,
            num_refs=num_refs,
            seed=seed,
            latent=latent,
            domain=domain,
            batch_size=batch_size,
            device=device,
            log=lambda message: err_console.print(f"[yellow]{message}[/]"),
        )
        report = job.run(source, out, progress=progress)
    except (AnonymizeError, ValueError) as error:
        fail(str(error))
    for path, reason in report.skipped:
        err_console.print(f"[yellow]skipped[/] {path}: {reason}")
    console.print(
        f"anonymised {len(report.done)} input(s) with the {models.backend} backend into {out} "
        f"({len(report.outputs)} files)"
    )
    if report.manifest is not None:
        console.print(f"manifest: {report.manifest}")
    if not report.done:
        raise typer.Exit(code=1)
