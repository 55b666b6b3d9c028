"""``privlens train heatmap|optics|lowres``: Stage I from the command line (thin: parses, calls
:func:`privlens.train.stage1.run_stage1`). Works the same under ``torchrun``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    help="Training: Stage I (heatmap, optics, lowres) and Stage II (gan).", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)

CONFIG_HELP = "YAML config (configs/stage1_*.yaml); defaults are the paper-scale settings."
DATA_HELP = "Folder written by `privlens data prepare` (sets data.root)."
OVERRIDES_HELP = "Config overrides key=value, e.g. train.steps=100 net.width=64 camera.num_terms=21."


def _fail(message: str) -> None:
    from privlens.commands.common import fail  # one plain error line for every command

    fail(message)


def _train(
    mode: str, data: Path | None, config: Path | None, out: Path | None, resume: bool, overrides: list[str]
):
    from privlens.data.images import ImageFileError
    from privlens.optics.lensfile import LensFileError
    from privlens.train.checkpoint import CheckpointError
    from privlens.train.config import ConfigError, load_config
    from privlens.train.stage1 import run_stage1
    from privlens.train.stage1_config import Stage1Config

    items = list(overrides or [])
    if data is not None:
        items.append(f"data.root={data}")
    try:
        settings = load_config(Stage1Config, config, items)
        result = run_stage1(mode, settings, out or Path(f"runs/stage1-{mode}"), resume=resume)  # type: ignore[arg-type]
    except (ConfigError, CheckpointError, ImageFileError, LensFileError) as error:
        _fail(str(error))
    summary = result.summary
    if not summary:  # not the main process
        return
    start, end = summary["val_start"], summary["val_end"]
    console.print(
        f"[bold]train {mode}[/]: {summary['steps']} steps; held-out heatmap L1 {start['heatmap_l1']:.4f} -> "
        f"{end['heatmap_l1']:.4f}, NME {100 * start['nme']:.2f}% -> {100 * end['nme']:.2f}%, "
        f"distortion {start['distortion']:.4f} -> {end['distortion']:.4f}"
    )
    for name, path in result.files.items():
        console.print(f"  {name}: {path}")


@app.command("heatmap")
def heatmap(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    data: Path = typer.Option(None, "--data", "-d", help=DATA_HELP),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default runs/stage1-heatmap)."),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
) -> None:
    """Pretrain U on clean faces against U*(x) from their dlib landmarks; reports NME on val."""
    _train("heatmap", data, config, out, resume, overrides)


@app.command("optics")
def optics(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    data: Path = typer.Option(None, "--data", "-d", help=DATA_HELP),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default runs/stage1-optics)."),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
) -> None:
    """Stage I: learn the lens (beta) and U together; writes a lens file for `privlens capture`."""
    _train("optics", data, config, out, resume, overrides)


@app.command("lowres")
def lowres(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    data: Path = typer.Option(None, "--data", "-d", help=DATA_HELP),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default runs/stage1-lowres)."),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
) -> None:
    """The low-resolution baseline (Ours-LR): fixed open optics on a large-pixel sensor; U trains."""
    _train("lowres", data, config, out, resume, overrides)
