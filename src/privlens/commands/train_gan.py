"""``privlens train gan``: Stage II from the command line (thin: parses, calls
:func:`privlens.train.stage2.run_stage2`). Works the same under ``torchrun``."""

from __future__ import annotations

from pathlib import Path

import typer

from privlens.commands.common import console, fail

OVERRIDES_HELP = "Config overrides key=value, e.g. train.steps=100 loss.lambda_expr=0 model.w_hpf=0."


def train_gan(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
    config: Path = typer.Option(None, "--config", "-c", help="YAML config (configs/stage2_*.yaml)."),
    data: Path = typer.Option(
        None, "--data", "-d", help="Folder written by `privlens data prepare` (data.root)."
    ),
    stage1: Path = typer.Option(
        None,
        "--stage1",
        help="Stage I `train optics` run folder: lens.safetensors + heatmap_net.safetensors.",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default runs/stage2)."),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
) -> None:
    """Stage II: train the reference-guided generator behind the frozen Stage I camera and U;
    writes generator.safetensors for `privlens anonymize`."""
    from privlens.train.checkpoint import CheckpointError
    from privlens.train.config import ConfigError, load_config
    from privlens.train.stage2 import run_stage2
    from privlens.train.stage2_config import Stage2Config

    items = list(overrides or [])
    if data is not None:
        items.append(f"data.root={data}")
    if stage1 is not None:
        items.append(f"stage1.run={stage1}")
    try:
        settings = load_config(Stage2Config, config, items)
        result = run_stage2(settings, out or Path("runs/stage2"), resume=resume)
    except (ConfigError, CheckpointError) as error:
        fail(str(error))
    summary = result.summary
    if not summary:  # not the main process
        return
    first, last = summary["first_losses"], summary["last_losses"]
    parts = [
        f"{name} {first.get(key, float('nan')):.4f} -> {last.get(key, float('nan')):.4f}"
        for name, key in (("cycle", "g_ref/cyc"), ("expression", "g_ref/expr"), ("D", "d_ref/adv"))
    ]
    console.print(
        f"[bold]train gan[/]: {summary['steps']} steps, domains {', '.join(summary['domains'])}; "
        + ", ".join(parts)
    )
    for name, path in result.files.items():
        console.print(f"  {name}: {path}")
