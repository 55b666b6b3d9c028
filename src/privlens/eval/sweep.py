"""The privacy–utility trade-off over a family of lenses (``privlens sweep``).

For each lens, on the validation faces of a prepared folder:

* privacy: the dlib identity distance between each face and its recovery by the *strongest*
  attack (the non-blind Wiener and Richardson–Lucy attackers of :mod:`privlens.attacks`, each
  tuned on the training faces; the attack with the lowest mean distance counts), and the share
  of faces re-identified (distance < 0.6). Higher distance = more private.
* utility: the heatmap network's landmark error on the captures: landmarks decoded from U(y) by
  soft-argmax against the prepared dlib landmarks, as NME (inter-ocular, %) and in pixels.
  Lower = geometry better kept.

A lens is Pareto-optimal when no other lens is both more private and more useful.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from privlens.anonymize.pipeline import heatmap_landmarks  # noqa: E402
from privlens.attacks.deconvolution import richardson_lucy, wiener_deconvolve  # noqa: E402
from privlens.attacks.identity import OriginalBoxIdentity  # noqa: E402
from privlens.attacks.suite import (  # noqa: E402
    SAME_PERSON_THRESHOLD,
    choose_rl,
    choose_wiener,
    make_captures,
)
from privlens.nets import HeatmapNet  # noqa: E402
from privlens.optics.camera import Camera  # noqa: E402
from privlens.report.tables import write_tables  # noqa: E402
from privlens.train.metrics import landmark_nme  # noqa: E402


@dataclass
class SweepPoint:
    lens: str
    identity_distance: float
    reidentified: float
    strongest_attack: str
    nme_percent: float
    landmark_error_px: float
    pareto: bool = False


def pareto_front(privacy: list[float], error: list[float]) -> list[bool]:
    """``True`` where no other point has privacy >= and error <= with one strictly better."""
    flags = []
    for i, (p_i, e_i) in enumerate(zip(privacy, error, strict=True)):
        dominated = any(
            p_j >= p_i and e_j <= e_i and (p_j > p_i or e_j < e_i)
            for j, (p_j, e_j) in enumerate(zip(privacy, error, strict=True))
            if j != i
        )
        flags.append(not dominated)
    return flags


@torch.no_grad()
def landmark_errors(
    camera: Camera, heatmap_net: HeatmapNet, images: torch.Tensor, truth: torch.Tensor
) -> tuple[float, float]:
    """Mean NME (%) and mean pixel error of U's landmarks on the captures of ``images``."""
    captures = make_captures(camera, images, quantise=True)
    predicted = heatmap_landmarks(heatmap_net.eval()(captures), images.shape[-1])
    nme = landmark_nme(predicted, truth)
    pixels = torch.linalg.vector_norm(predicted - truth, dim=-1).mean(dim=-1)
    return float(nme.mean() * 100), float(pixels.mean())


def strongest_attack_distance(
    camera: Camera,
    attacker: torch.Tensor,
    evaluation: torch.Tensor,
    identity: OriginalBoxIdentity,
    lambdas: tuple[float, ...],
    iterations: tuple[int, ...],
) -> tuple[float, float, str]:
    """Mean identity distance and re-identified share under the attack that re-identifies best."""
    with torch.no_grad():
        psf = camera.eval().psf()
    own = make_captures(camera, attacker, quantise=True)
    captures = make_captures(camera, evaluation, quantise=True)
    recovered = {"none": captures}
    if camera.config.lowres_size is None:
        lam = choose_wiener(own, attacker, psf, lambdas).value
        recovered["wiener"] = wiener_deconvolve(captures, psf, lam)
        mode = camera.config.convolution
        steps = int(choose_rl(own, attacker, psf, iterations, mode).value)
        recovered["richardson-lucy"] = richardson_lucy(captures, psf, steps, mode=mode)
    best = None
    for attack, images in recovered.items():
        distance = identity(evaluation, images)
        valid = ~torch.isnan(distance)
        if not valid.any():
            continue
        mean = float(distance[valid].mean())
        share = float((distance[valid] < SAME_PERSON_THRESHOLD).double().mean())
        if best is None or mean < best[0]:
            best = (mean, share, attack)
    if best is None:
        return float("nan"), float("nan"), "none"
    return best


def run_sweep(
    lenses: dict[str, Camera],
    heatmap_nets: dict[str, HeatmapNet],
    attacker: torch.Tensor,
    evaluation: torch.Tensor,
    truth: torch.Tensor,
    out: Path,
    lambdas: tuple[float, ...] = tuple(float(v) for v in torch.logspace(-6, 0, 7)),
    iterations: tuple[int, ...] = (1, 5, 20, 50),
    progress: Callable[[str], None] | None = None,
) -> list[SweepPoint]:
    """Evaluate every lens; write ``sweep.{md,csv,json}`` and ``sweep.png`` to ``out``."""
    say = progress or (lambda message: None)
    identity = OriginalBoxIdentity()
    points = []
    for name, camera in lenses.items():
        say(f"sweep: {name}")
        distance, share, attack = strongest_attack_distance(
            camera, attacker, evaluation, identity, lambdas, iterations
        )
        nme, pixels = landmark_errors(camera, heatmap_nets[name], evaluation, truth)
        points.append(SweepPoint(name, distance, share, attack, nme, pixels))
    flags = pareto_front([p.identity_distance for p in points], [p.nme_percent for p in points])
    for point, flag in zip(points, flags, strict=True):
        point.pareto = flag
    rows = [point.__dict__.copy() for point in points]
    write_tables(rows, Path(out) / "sweep", {"same_person_threshold": SAME_PERSON_THRESHOLD})
    plot_sweep(points, Path(out) / "sweep.png")
    return points


def plot_sweep(points: list[SweepPoint], path: Path) -> Path:
    """Identity distance after the strongest attack against landmark NME; Pareto front joined."""
    figure, axis = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    for point in points:
        axis.scatter(point.nme_percent, point.identity_distance, s=40, color="C3" if point.pareto else "C0")
        axis.annotate(
            point.lens,
            (point.nme_percent, point.identity_distance),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    front = sorted((p for p in points if p.pareto), key=lambda p: p.nme_percent)
    if len(front) > 1:
        axis.plot(
            [p.nme_percent for p in front],
            [p.identity_distance for p in front],
            color="C3",
            label="Pareto front",
        )
        axis.legend(loc="best")
    axis.axhline(SAME_PERSON_THRESHOLD, color="grey", linestyle="--", linewidth=1)
    axis.text(
        axis.get_xlim()[0],
        SAME_PERSON_THRESHOLD,
        " same-person threshold",
        va="bottom",
        fontsize=8,
        color="grey",
    )
    axis.set_xlabel("landmark NME of U on the captures, % (lower: geometry kept)")
    axis.set_ylabel("ID distance after strongest attack (higher: private)")
    axis.set_title("privacy–utility trade-off")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
