"""The main job on embedded data: what ``make demo`` runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from privlens.attacks.identity import OriginalBoxIdentity
from privlens.attacks.inversion import InversionTraining
from privlens.attacks.job import DEFAULT_LENSES, AttackReport, embedded_faces, run_attack_job
from privlens.attacks.suite import AttackSettings
from privlens.data.images import save_image
from privlens.data.samples import astronaut
from privlens.eval.quality import psnr
from privlens.optics.lensfile import save_lens
from privlens.optics.presets import LENS_PRESETS, make_camera
from privlens.report.figures import image_grid, plot_lens


DEMO_ATTACK_SETTINGS = AttackSettings(
    rl_iterations=(1, 5, 10, 20, 50),
    inversion=InversionTraining(steps=150, width=8, depth=3),
)
"""Small enough for a 2-core CPU in about a minute per lens; see ``privlens attack`` for more."""


@dataclass
class DemoResult:
    out_dir: Path
    comparison: Path
    psnr_db: dict[str, float]
    attacks: AttackReport | None = None


def run_demo(
    out_dir: str | Path = "runs/demo",
    image_size: int = 256,
    attacks: bool = True,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Capture the astronaut through every preset lens; write captures, PSF plots, lens files.

    Layout of ``out_dir``: ``captures/<lens>.png``, ``psf/<lens>.png``, ``lenses/<lens>.safetensors``,
    ``comparison.png`` and ``summary.json`` (PSNR of each capture against the scene); with
    ``attacks``, ``attacks/`` holds the attack suite's tables and figures on the embedded LFW faces
    (64 px, 12 evaluated, 88 for the attacker).
    """
    out_dir = Path(out_dir)
    scene = astronaut(image_size)
    columns = {"scene": scene}
    scores: dict[str, float] = {}
    for lens in LENS_PRESETS:
        camera = make_camera(lens, image_size).eval()
        with torch.no_grad():
            capture = camera(scene[None]).image[0]
        save_image(capture, out_dir / "captures" / f"{lens}.png")
        plot_lens(camera, out_dir / "psf" / f"{lens}.png", log_scale=False, title=f"lens: {lens}")
        save_lens(camera, out_dir / "lenses" / f"{lens}.safetensors", {"preset": lens})
        scores[lens] = float(psnr(capture, scene))
        columns[lens] = capture
    captions = {lens: f"PSNR {value:.1f} dB" for lens, value in scores.items()}
    comparison = image_grid(columns, out_dir / "comparison.png", "captures of the same scene", captions)
    (out_dir / "summary.json").write_text(json.dumps({"image_size": image_size, "psnr_db": scores}, indent=2))
    report = None
    if attacks:
        report = run_attack_job(
            list(DEFAULT_LENSES),
            out_dir / "attacks",
            embedded_faces(64),
            evaluation_count=12,
            settings=DEMO_ATTACK_SETTINGS,
            identity=OriginalBoxIdentity(),
            progress=progress,
        )
    return DemoResult(out_dir, comparison, scores, report)
