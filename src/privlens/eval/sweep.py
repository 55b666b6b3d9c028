"""The privacy–utility trade-off over a family of lenses (``privlens sweep``).

For each lens, on the evaluated faces (the validation split of a prepared folder, never trained
on), with captures as the physical sensor stores them (:mod:`privlens.attacks.capture`: shot and
read noise of :mod:`privlens.optics.noise` at the camera's settings, ADC rounding):

* privacy: the full attack suite of :mod:`privlens.attacks.suite` (each attack tuned on the
  attacker's own faces, the training split), scored by rank-1 identification against a gallery of
  the N evaluated identities (chance 1/N), TAR at FAR 1e-2 / 1e-3, the dlib identity distance and
  the share re-identified (distance < 0.6), and (``landmark_attack``) the ``landmarks`` attack:
  the lens's own U read on each capture, its landmarks matched in shape space against the
  photos' (U must not have trained on the evaluated faces; the sweep evaluates ``val/``). The
  *strongest* attack (highest rank-1, then lowest distance) counts for the lens. Every figure
  carries its N and a bootstrap 95 % interval.
* utility: the heatmap network's landmark error on the same (noisy, quantised) captures: landmarks decoded
  from U(y) by soft-argmax against the prepared dlib landmarks, as NME (inter-ocular, %) and in
  pixels. Lower = geometry better kept.

A lens is Pareto-optimal when no other lens is both more private (lower rank-1 after the strongest
attack, then larger distance) and more useful.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import dataclasses  # noqa: E402
import functools  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from privlens.anonymize.pipeline import heatmap_landmarks  # noqa: E402
from privlens.attacks.capture import DEFAULT_NOISE, CaptureNoise, sensor_captures  # noqa: E402
from privlens.attacks.identity import OriginalBoxIdentity  # noqa: E402
from privlens.attacks.inversion import InversionTraining  # noqa: E402
from privlens.attacks.suite import (  # noqa: E402
    SAME_PERSON_THRESHOLD,
    AttackSettings,
    attack_lens,
    strongest,
)
from privlens.eval.heatmap import predict_landmarks  # noqa: E402
from privlens.nets import HeatmapNet  # noqa: E402
from privlens.optics.camera import Camera  # noqa: E402
from privlens.report.tables import write_tables  # noqa: E402
from privlens.train.metrics import landmark_nme  # noqa: E402

SWEEP_INVERSION_STEPS, SWEEP_INVERSION_WIDTH = 600, 8
"""The sweep's default learned inversion: CPU-sized, a screen of many lenses. `privlens attack`'s
is 6000 steps at width 16; pass those to :func:`sweep_settings` for the full attacker."""


def sweep_settings(
    noise: CaptureNoise = DEFAULT_NOISE,
    hybrid: bool = True,
    inversion_steps: int = SWEEP_INVERSION_STEPS,
    inversion_width: int = SWEEP_INVERSION_WIDTH,
) -> AttackSettings:
    """The sweep's attack suite: every attack, a learned inversion of at most ``inversion_steps``
    (early stopped) and ``inversion_width`` channels; ``hybrid`` includes ``rl+inversion`` and
    ``tikhonov+inversion``."""
    return AttackSettings(
        inversion=InversionTraining(
            steps=inversion_steps, batch_size=8, width=inversion_width, check_every=50, patience=4
        ),
        noise=noise,
        hybrid=hybrid,
    )


@dataclass
class SweepPoint:
    lens: str
    strongest_attack: str
    faces: int
    chance_rank1: float
    rank1: float
    rank1_ci: tuple[float, float]
    tar_far1e2: float
    tar_far1e3: float
    identity_distance: float
    reidentified: float
    reidentified_ci: tuple[float, float]
    nme_percent: float
    landmark_error_px: float
    pareto: bool = False
    attacks: dict[str, dict] = field(default_factory=dict)

    def row(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "attacks"}
        out["rank1_ci"] = f"[{self.rank1_ci[0]:.2f}, {self.rank1_ci[1]:.2f}]"
        out["reidentified_ci"] = f"[{self.reidentified_ci[0]:.2f}, {self.reidentified_ci[1]:.2f}]"
        return out


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
    camera: Camera | None,
    heatmap_net: HeatmapNet,
    images: torch.Tensor,
    truth: torch.Tensor,
    noise: CaptureNoise = DEFAULT_NOISE,
) -> tuple[float, float]:
    """Mean NME (%) and mean pixel error of U's landmarks on the stored (noisy, quantised)
    captures of ``images`` (``camera=None``: on the clean images themselves, U's reference error)."""
    captures = images if camera is None else sensor_captures(camera, images, noise, seed=7)
    predicted = heatmap_landmarks(heatmap_net.eval()(captures), images.shape[-1])
    nme = landmark_nme(predicted, truth)
    pixels = torch.linalg.vector_norm(predicted - truth, dim=-1).mean(dim=-1)
    return float(nme.mean() * 100), float(pixels.mean())


def _point(name: str, scores: dict[str, dict], nme: float, pixels: float) -> SweepPoint:
    attack = strongest(scores)
    row = scores[attack]
    nan = float("nan")
    return SweepPoint(
        lens=name,
        strongest_attack=attack,
        faces=int(row.get("faces", 0)),
        chance_rank1=row.get("chance_rank1", nan),
        rank1=row.get("rank1", nan),
        rank1_ci=(row.get("rank1_lo", nan), row.get("rank1_hi", nan)),
        tar_far1e2=row.get("tar@far0.01", nan),
        tar_far1e3=row.get("tar@far0.001", nan),
        identity_distance=row.get("identity_distance", nan),
        reidentified=row.get("reidentified", nan),
        reidentified_ci=(row.get("reid_lo", nan), row.get("reid_hi", nan)),
        nme_percent=nme,
        landmark_error_px=pixels,
        attacks=scores,
    )


def run_sweep(
    lenses: dict[str, Camera],
    heatmap_nets: dict[str, HeatmapNet],
    attacker: torch.Tensor,
    evaluation: torch.Tensor,
    truth: torch.Tensor,
    out: Path,
    settings: AttackSettings | None = None,
    clean_net: HeatmapNet | None = None,
    progress: Callable[[str], None] | None = None,
    precomputed: dict[str, dict[str, dict]] | None = None,
    landmark_attack: bool = True,
) -> list[SweepPoint]:
    """Evaluate every lens; write ``sweep.{md,csv,json}``, ``sweep_attacks.{md,csv,json}`` (every
    attack of every lens) and ``sweep.png`` to ``out``.

    ``clean_net``: U for clean faces, whose NME on the clean evaluated faces is reported as the
    utility reference. ``precomputed``: attack scores per lens from an earlier
    :func:`privlens.attacks.suite.attack_lens` run (those lenses are not attacked again; with
    ``landmark_attack`` only the ``landmarks`` attack is added to them).
    """
    say = progress or (lambda message: None)
    settings = settings or sweep_settings()
    identity = OriginalBoxIdentity()
    points = []
    for name, camera in lenses.items():
        say(f"sweep: {name}")
        reader = functools.partial(predict_landmarks, heatmap_nets[name]) if landmark_attack else None
        if precomputed is not None and name in precomputed:
            scores = dict(precomputed[name])
            if reader is not None:
                only = dataclasses.replace(settings, attacks=("landmarks",))
                extra = attack_lens(name, camera, attacker, evaluation, only, identity, say, reader).scores
                scores["landmarks"] = extra["landmarks"]
        else:
            scores = attack_lens(name, camera, attacker, evaluation, settings, identity, say, reader).scores
        nme, pixels = landmark_errors(camera, heatmap_nets[name], evaluation, truth, settings.noise)
        points.append(_point(name, scores, nme, pixels))
    flags = pareto_front(
        [-p.rank1 + 1e-3 * p.identity_distance for p in points], [p.nme_percent for p in points]
    )
    for point, flag in zip(points, flags, strict=True):
        point.pareto = flag
    extra = {
        "same_person_threshold": SAME_PERSON_THRESHOLD,
        "sensor_noise": {name: settings.noise.describe(camera) for name, camera in lenses.items()},
        "attacker_faces": int(attacker.shape[0]),
        "evaluated_faces": int(evaluation.shape[0]),
    }
    if clean_net is not None:
        extra["clean_nme_percent"], extra["clean_landmark_error_px"] = landmark_errors(
            None, clean_net, evaluation, truth
        )
    write_tables([p.row() for p in points], Path(out) / "sweep", extra)
    detail = [{"lens": p.lens, "attack": a, **s} for p in points for a, s in p.attacks.items()]
    write_tables(detail, Path(out) / "sweep_attacks", extra)
    plot_sweep(points, Path(out) / "sweep.png", extra.get("clean_nme_percent"))
    return points


def plot_sweep(points: list[SweepPoint], path: Path, clean_nme: float | None = None) -> Path:
    """Rank-1 after the strongest attack against landmark NME; chance and Pareto front drawn."""
    figure, axis = plt.subplots(figsize=(6.8, 4.8), layout="constrained")
    for index, point in enumerate(points):
        low, high = point.rank1_ci
        axis.errorbar(
            point.nme_percent,
            point.rank1,
            yerr=[[max(point.rank1 - low, 0)], [max(high - point.rank1, 0)]],
            fmt="o",
            color="C3" if point.pareto else "C0",
            capsize=2,
        )
        axis.annotate(
            f"{point.lens} ({point.strongest_attack})",
            (point.nme_percent, point.rank1),
            fontsize=7,
            xytext=(4, 4 if index % 2 == 0 else -10),  # neighbours' labels do not overprint
            textcoords="offset points",
        )
    front = sorted((p for p in points if p.pareto), key=lambda p: p.nme_percent)
    if len(front) > 1:
        axis.plot([p.nme_percent for p in front], [p.rank1 for p in front], color="C3", label="Pareto front")
    if points and points[0].chance_rank1 == points[0].chance_rank1:
        chance = points[0].chance_rank1
        axis.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance (1/{points[0].faces})")
        axis.axhline(2 * chance, color="grey", linestyle=":", linewidth=1, label="2 x chance")
    if clean_nme is not None:
        axis.axvline(clean_nme, color="C2", linestyle="--", linewidth=1, label="U on clean faces")
        axis.axvline(1.5 * clean_nme, color="C2", linestyle=":", linewidth=1, label="1.5 x clean NME")
    axis.legend(loc="best", fontsize=7)
    n = points[0].faces if points else 0
    axis.set_xlabel("landmark NME of U on the sensor's captures, % (lower: geometry kept)")
    axis.set_ylabel(f"rank-1 after the strongest attack, N={n} (lower: private)")
    axis.set_title("privacy–utility trade-off (95 % bootstrap intervals)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
