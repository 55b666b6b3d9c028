"""``privlens evaluate`` and ``privlens sweep``: the paper's protocol and the trade-off curve."""

from __future__ import annotations

from pathlib import Path

import typer

from privlens.commands.common import StepProgress, check_seed, fail, say, skipped

IDENTITY_DEFAULT = ("dlib", "facenet-vggface2", "facenet-casia")


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"{option} takes comma-separated numbers, got {text!r}")


def evaluate(
    run: list[Path] = typer.Option(
        ..., "--run", "-r", help="Run folder to evaluate (Stage I or II); repeatable."
    ),
    data: Path = typer.Option(..., help="Prepared face folder (its val/ split) or a folder of faces."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    size: int = typer.Option(64, help="Image side in pixels (must suit the runs' heatmap network)."),
    references: Path | None = typer.Option(None, help="Reference faces (default: the evaluation split)."),
    references_per_source: int = typer.Option(10, help="Reference faces per source face."),
    seed: int = typer.Option(0, help="Seed of the reference draw."),
    max_sources: int | None = typer.Option(None, help="Evaluate at most this many source faces."),
    baselines: bool = typer.Option(True, help="Add the blur and pixelation software baselines."),
    warp_row: bool = typer.Option(True, help="Add the first run with the training-free warp backend."),
    identity: list[str] = typer.Option(
        [],
        "--identity",
        help="Identity backend, repeatable (dlib, facenet-vggface2, facenet-casia; default: all three).",
    ),
    fid: bool = typer.Option(True, help="FID (needs Inception weights; else listed unavailable)."),
    lpips: bool = typer.Option(False, help="LPIPS between source and output (needs backbone weights)."),
    analysis_px: int = typer.Option(160, help="Upsample smaller images to this size for face analysis."),
) -> None:
    """The paper's protocol: each source face de-identified with several references, averaged."""
    from privlens.anonymize.pipeline import AnonymizeError
    from privlens.data.images import ImageFileError
    from privlens.eval.job import run_evaluation
    from privlens.eval.pairs import EvalOptions
    from privlens.outputs import check_output_dir, check_size
    from privlens.report.tables import to_markdown

    check_seed(seed)
    for folder in run:
        if not folder.is_dir():
            fail(f"run folder not found: {folder}")
    if not data.exists():
        fail(f"--data {data}: not found")
    check_size(size)
    check_output_dir(out, [data, *([references] if references else [])])
    # repeatable like `eval pairs --identity`; a comma list (the older form) is still accepted
    backends = tuple(b.strip() for item in identity for b in item.split(",") if b.strip())
    options = EvalOptions(
        identity=backends or IDENTITY_DEFAULT, fid=fid, lpips=lpips, progress=False, analysis_px=analysis_px
    )
    try:
        with StepProgress("evaluating") as step:
            result = run_evaluation(
                run,
                data,
                out,
                size,
                references,
                references_per_source,
                seed,
                max_sources,
                baselines,
                warp_row,
                options,
                progress=step,
            )
    except (AnonymizeError, ImageFileError, ValueError) as error:
        fail(str(error))
    for path, reason in result.skipped:
        skipped(path, reason)
    say(to_markdown(result.rows))
    for name, reason in next(iter(result.reports.values())).unavailable.items():
        say(f"unavailable: {name}: {reason}")
    say(f"wrote {out / 'evaluation.md'} (+ .csv, .json, pairs/, published.md)")


def sweep(
    data: Path = typer.Option(..., help="Prepared face folder (train/ for the attacker, val/ evaluated)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    heatmap: Path | None = typer.Option(None, help="Heatmap network U for lenses without their own run."),
    defocus: str = typer.Option("", help="Defocus strengths in um RMS, e.g. 0.1,0.25,0.5,1."),
    prototype_scale: str = typer.Option("", help="Prototype scales in um per unit, e.g. 0.25,0.5,1."),
    lens: list[str] = typer.Option([], "--lens", "-l", help="A lens file or Stage I run folder; repeatable."),
    size: int = typer.Option(64, help="Image side in pixels."),
    evaluation_count: int = typer.Option(16, help="Validation faces evaluated."),
    attacker_count: int = typer.Option(32, help="Training faces the attacker tunes on."),
    full_scale_e: float | None = typer.Option(
        None, help="Photo-electrons at full scale per sensor pixel (default: each lens's, 4000)."
    ),
    read_noise_e: float | None = typer.Option(
        None, help="Read noise, electrons RMS (default: the lens's, 2.5)."
    ),
    bit_depth: int | None = typer.Option(None, help="ADC bits of the captures (default: the lens's, 10)."),
    hybrid: bool = typer.Option(
        True,
        help="Include the hybrid attacks rl+inversion and tikhonov+inversion "
        "(a restoration, then a U-Net on its outputs).",
    ),
    inversion_steps: int = typer.Option(
        600, help="Most steps of the learned inversion (early stopped); `privlens attack` uses 6000."
    ),
    inversion_width: int = typer.Option(
        8, help="U-Net width of the learned inversion; `privlens attack`: 16."
    ),
    landmark_attack: bool = typer.Option(
        True,
        help="Also the 'landmarks' attack: each lens's U read on its captures, matched in shape space "
        "against the photos' landmarks (the U's must not have trained on the val faces).",
    ),
) -> None:
    """Identity distance after the strongest attack against landmark error, one point per lens."""
    from privlens.anonymize.models import load_heatmap
    from privlens.anonymize.pipeline import AnonymizeError
    from privlens.attacks.capture import CaptureNoise
    from privlens.eval.sweep import run_sweep, sweep_settings
    from privlens.optics.config import CameraConfig
    from privlens.optics.presets import make_camera
    from privlens.outputs import check_output_dir, check_size
    from privlens.report.tables import to_markdown
    from privlens.train.data import LandmarkFaces

    check_size(size)
    if not data.is_dir():
        fail(f"--data {data}: not a folder")
    if inversion_steps < 1 or inversion_width < 1:
        fail(
            f"--inversion-steps and --inversion-width must be >= 1, got {inversion_steps}, {inversion_width}"
        )
    try:
        noise = CaptureNoise(True, full_scale_e, read_noise_e, bit_depth)
        noise.config_for(CameraConfig())
    except ValueError as error:
        fail(f"sensor noise: {error}")
    check_output_dir(out, [data])
    cameras, nets = {}, {}
    try:
        shared = load_heatmap(heatmap) if heatmap is not None else None
        for value in _floats(defocus, "--defocus"):
            cameras[f"defocus {value:g} um"] = make_camera("defocus", size, defocus_um=value)
        for value in _floats(prototype_scale, "--prototype-scale"):
            cameras[f"prototype x{value:g} um"] = make_camera("prototype", size, prototype_scale_um=value)
        for item in lens:
            path = Path(item)
            if path.is_dir():
                cameras[path.name] = make_camera(str(path / "lens.safetensors"), size)
                nets[path.name] = load_heatmap(path / "heatmap_net.safetensors")
            else:
                cameras[path.stem if path.suffix else item] = make_camera(item, size)
        if not cameras:
            fail("nothing to sweep: give --defocus, --prototype-scale or --lens")
        for name in cameras:
            if name not in nets:
                if shared is None:
                    fail(f"{name} has no heatmap network: give --heatmap FILE (or a Stage I run folder)")
                nets[name] = shared
        attacker = LandmarkFaces(data, "train", size, limit=attacker_count)
        evaluation = LandmarkFaces(data, "val", size, limit=evaluation_count)
    except (AnonymizeError, FileNotFoundError, ValueError) as error:
        fail(str(error))
    import torch

    attacker_images = torch.stack([attacker[i]["image"] for i in range(len(attacker))])
    items = [evaluation[i] for i in range(len(evaluation))]
    images = torch.stack([item["image"] for item in items])
    truth = torch.stack([item["landmarks"] for item in items])
    with StepProgress("sweeping") as step:
        points = run_sweep(
            cameras,
            nets,
            attacker_images,
            images,
            truth,
            out,
            sweep_settings(noise, hybrid, inversion_steps, inversion_width),
            progress=step,
            landmark_attack=landmark_attack,
        )
    say(to_markdown([p.__dict__ for p in points]))
    say(f"wrote {out / 'sweep.png'} and {out / 'sweep.csv'}")
