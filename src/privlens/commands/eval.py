"""``privlens eval ...``: the paper's evaluation protocol."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from privlens.eval.identity import IDENTITY_BACKENDS

eval_app = typer.Typer(help="Evaluate de-identified faces against their originals.", no_args_is_help=True)
err_console = Console(stderr=True)


@eval_app.command("pairs")
def pairs(
    originals: Path = typer.Argument(..., help="Folder (or file) of original images."),
    deidentified: Path = typer.Argument(..., help="Folder (or file) of de-identified images, same names."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the table: .md, .csv or .json."),
    identity: list[str] = typer.Option(
        list(IDENTITY_BACKENDS),
        "--identity",
        help=f"Identity backends (repeatable): {', '.join(IDENTITY_BACKENDS)}.",
    ),
    facenet_vggface2_weights: Path | None = typer.Option(
        None, help="Local InceptionResnetV1 VGGFace2 weights."
    ),
    facenet_casia_weights: Path | None = typer.Option(
        None, help="Local InceptionResnetV1 CASIA-WebFace weights."
    ),
    inception_weights: Path | None = typer.Option(None, help="Local pytorch-fid Inception weights (FID)."),
    lpips_weights: Path | None = typer.Option(None, help="Local torchvision AlexNet/VGG16 weights (LPIPS)."),
    lpips_net: str = typer.Option("alex", help="LPIPS backbone: alex or vgg."),
    fid: bool = typer.Option(True, help="Compute FID (needs Inception weights)."),
    lpips: bool = typer.Option(True, help="Compute LPIPS (needs backbone weights)."),
    batch_size: int = typer.Option(16, help="Batch size of the network metrics."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Match files by name, compute every available metric, print the table (paper Tables 2-3)."""
    from privlens.commands.common import fail
    from privlens.data.images import ImageFileError
    from privlens.eval.pairs import TABLE_FORMATS, EvalOptions, evaluate_pairs, render_report
    from privlens.eval.weights import WeightsFileError
    from privlens.files import atomic_write_text

    fmt = None
    if out is not None:
        fmt = out.suffix.lower().lstrip(".")
        if fmt not in TABLE_FORMATS:
            fail(f"--out must end in {', '.join('.' + f for f in TABLE_FORMATS)}, got {out.name!r}")
    unknown = [b for b in identity if b not in IDENTITY_BACKENDS]
    if unknown:
        fail(f"unknown --identity {', '.join(unknown)}; expected {', '.join(IDENTITY_BACKENDS)}")
    if lpips_net not in ("alex", "vgg"):
        fail(f"--lpips-net must be alex or vgg, got {lpips_net!r}")
    if batch_size < 1:
        fail(f"--batch-size must be positive, got {batch_size}")
    options = EvalOptions(
        identity=tuple(dict.fromkeys(identity)),
        facenet_weights={
            "facenet-vggface2": facenet_vggface2_weights,
            "facenet-casia": facenet_casia_weights,
        },
        inception_weights=inception_weights,
        lpips_weights=lpips_weights,
        lpips_net=lpips_net,
        fid=fid,
        lpips=lpips,
        batch_size=batch_size,
        progress=progress,
    )
    try:
        if out is not None:  # checked before the (long) evaluation, not after it
            from privlens.outputs import check_output_file

            check_output_file(out, overwrite=True, inputs=[originals, deidentified])
        report = evaluate_pairs(originals, deidentified, options)
    except (ImageFileError, WeightsFileError, ValueError) as error:
        fail(str(error))
    typer.echo(render_report(report, "md"), nl=False)
    if out is not None:
        atomic_write_text(out, render_report(report, fmt))
        err_console.print(f"wrote {escape(str(out))}", highlight=False)
    if report.pairs == 0:
        raise typer.Exit(code=1)


from privlens.commands.eval_heatmap import heatmap as _heatmap  # noqa: E402

eval_app.command("heatmap")(_heatmap)
