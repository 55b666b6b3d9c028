"""``privlens data ...``: dataset preparation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from privlens.faces.detect import DETECTORS

data_app = typer.Typer(help="Face datasets: prepare aligned crops from photos.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@data_app.command("prepare")
def prepare(
    src: Path = typer.Argument(..., help="Folder of photos (sub-folders are kept, e.g. as domains)."),
    dst: Path = typer.Argument(..., help="Output folder (train/, val/, landmarks.csv, skipped.txt)."),
    size: int = typer.Option(256, help="Side of the aligned square crops, pixels."),
    detector: str = typer.Option("dlib", help=f"Face detector: {', '.join(DETECTORS)}."),
    val_fraction: float = typer.Option(0.1, help="Fraction of photos put in val/ (stable by name)."),
    min_face: float = typer.Option(32.0, "--min-face", help="Smallest face kept, box width in pixels."),
    max_faces: int | None = typer.Option(
        None, "--max-faces", help="At most this many faces per photo, the widest (default: all)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Detect, align (FFHQ-style, eyes level), crop and resize every face (one file per face,
    <photo>_<k>.png, left to right); EXIF orientation applied; resumable."""
    from privlens.commands.common import fail
    from privlens.data.images import ImageFileError
    from privlens.data.prepare import prepare_faces

    if detector not in DETECTORS:
        fail(f"--detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
    if size < 8:
        fail(f"--size must be at least 8, got {size}")
    if min_face < 0:
        fail(f"--min-face must be non-negative, got {min_face:g}")
    if max_faces is not None and max_faces < 1:
        fail(f"--max-faces must be at least 1, got {max_faces}")
    try:
        from privlens.outputs import check_output_dir

        check_output_dir(dst, [src])  # never the photos' folder, nor inside it
        report = prepare_faces(src, dst, size, detector, val_fraction, progress, min_face, max_faces)
    except (ImageFileError, ValueError) as error:
        fail(str(error))
    for path, reason in report.skipped:
        err_console.print(f"[yellow]skipped[/] {escape(path)}: {escape(reason)}", highlight=False)
    if report.faces_left_out:
        err_console.print(
            f"[yellow]{report.faces_left_out} face(s) left out by --max-faces {max_faces}[/]", highlight=False
        )
    console.print(
        f"{report.train + report.val} face(s) in {dst} (train {report.train}, val {report.val}); "
        f"{report.processed} processed now, {report.resumed} done before, {len(report.skipped)} skipped "
        f"(listed in {dst / 'skipped.txt'})",
        highlight=False,
    )
    if report.train + report.val == 0:
        raise typer.Exit(code=1)
