"""How well U finds landmarks: inter-ocular NME against two mean-shape baselines.

Pure metrics (no files, no training): given U, aligned faces at U's size and their dlib landmarks,
:func:`evaluate_heatmap` reports, on clean faces and (optionally) through a lens (noise-free, and
as the sensor stores the captures),

* ``nme_u``: U's landmarks (soft-argmax of its 68 landmark channels) against dlib's on the clean
  image;
* ``nme_train_mean``: always predicting the mean shape of U's training set (stored in U's file);
* ``nme_own_mean``: always predicting the mean shape of the evaluated faces themselves, an oracle
  that already knows the framing (on aligned crops it is a strong baseline);
* ``spread_ratio``: how much U's landmarks vary across faces, as a fraction of how much dlib's do
  (RMS distance to the respective mean shape): near 0 means U predicts one average face;
* ``landmark_rank1``: the price of that utility, what U's landmarks leak. The share of faces whose
  U landmarks (from the clean image, the optical image or the stored capture) are nearest in shape
  space to their own photo's dlib landmarks among the N evaluated photos
  (:mod:`privlens.eval.shape_identity`; chance ``1 / N``), with a bootstrap 95 % interval over
  the faces. Anyone with the capture can run U, so this is an attack on the capture that needs no
  restoration; it is only meaningful on faces U never trained on.

NME: mean point-to-point distance over the 68 points divided by the inter-ocular distance (outer
eye corners, dlib points 36 and 45), per face, then averaged over the N faces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from privlens.eval.recognition import bootstrap_ci
from privlens.eval.shape_identity import landmark_rank1_hits
from privlens.faces.heatmaps import heatmap_to_image_coords
from privlens.nets import HeatmapNet, soft_argmax

RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 36, 45
HEATMAP_FORMATS = ("md", "json")


def inter_ocular_nme(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-face NME ``[N]`` of ``[N, 68, 2]`` (or one ``[68, 2]`` broadcast) against ``[N, 68, 2]``."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    if truth.ndim != 3 or truth.shape[1:] != (68, 2):
        raise ValueError(f"truth must be [N, 68, 2] landmarks, got {truth.shape}")
    predicted = np.broadcast_to(predicted, truth.shape)
    errors = np.linalg.norm(predicted - truth, axis=-1).mean(axis=-1)
    ocular = np.linalg.norm(truth[:, RIGHT_EYE_OUTER] - truth[:, LEFT_EYE_OUTER], axis=-1)
    return errors / np.maximum(ocular, 1e-6)


def spread(points: np.ndarray) -> float:
    """RMS distance (pixels) of ``[N, 68, 2]`` landmarks to their own mean shape."""
    points = np.asarray(points, np.float64)
    return float(np.sqrt(np.square(points - points.mean(axis=0)).sum(axis=-1).mean()))


@torch.no_grad()
def predict_landmarks(net: HeatmapNet, images: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """U's 68 landmarks ``[N, 68, 2]`` (x, y pixels of the input) for ``[N, 3, S, S]`` images."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    size = images.shape[-1]
    out = []
    for start in range(0, len(images), batch_size):
        heatmaps = net(images[start : start + batch_size].to(device)).float()
        uv = soft_argmax(heatmaps[:, : net.num_landmarks])
        out.append(heatmap_to_image_coords(uv, size, heatmaps.shape[-1]).cpu())
    net.train(was_training)
    return torch.cat(out).numpy().astype(np.float64)


@dataclass
class HeatmapRow:
    """One condition (``clean`` or ``lens``): mean NMEs over ``n`` faces, and U's ratios."""

    condition: str
    n: int
    nme_u: float
    nme_train_mean: float | None
    nme_own_mean: float
    spread_ratio: float
    landmark_rank1: float | None = None
    landmark_rank1_lo: float | None = None
    landmark_rank1_hi: float | None = None

    @property
    def chance_rank1(self) -> float:
        return 1.0 / self.n

    @property
    def ratio_own_mean(self) -> float | None:
        """U's NME over the oracle's (n/a for one face, which is its own mean shape)."""
        return None if self.nme_own_mean <= 0 else self.nme_u / self.nme_own_mean

    @property
    def ratio_train_mean(self) -> float | None:
        return None if self.nme_train_mean is None else self.nme_u / self.nme_train_mean


@dataclass
class HeatmapReport:
    """:func:`evaluate_heatmap`'s result; ``notes`` say what was adapted (e.g. resizing)."""

    image_size: int
    rows: list[HeatmapRow]
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        rows = [
            {**asdict(r), "ratio_own_mean": r.ratio_own_mean, "ratio_train_mean": r.ratio_train_mean}
            for r in self.rows
        ]
        return {"image_size": self.image_size, "rows": rows, "notes": self.notes, "sources": self.sources}


def u_inputs(
    images: torch.Tensor,
    camera: torch.nn.Module | None = None,
    noise_seeds: Sequence[int] = (),
    batch_size: int = 32,
) -> list[tuple[str, list[torch.Tensor]]]:
    """What U reads, per condition: ``("clean", [images])``; with a ``camera`` also ``("lens",
    [optical image])`` and, with ``noise_seeds``, ``("lens+sensor", [one stored capture per
    seed])`` (see :func:`evaluate_heatmap`). Images ``[N, 3, S, S]`` in [0, 1], on the CPU."""
    conditions = [("clean", [images])]
    if camera is None:
        return conditions
    device = next(iter(camera.parameters()), torch.zeros(())).device
    with torch.no_grad():
        psf = camera.psf()
        response = torch.cat(
            [
                camera.image(images[i : i + batch_size].to(device), psf).cpu()
                for i in range(0, len(images), batch_size)
            ]
        )
        conditions.append(("lens", [response.clamp(0, 1)]))
        if noise_seeds:
            draws = [
                camera.readout(response, generator=torch.Generator().manual_seed(int(seed)))
                for seed in noise_seeds
            ]
            conditions.append(("lens+sensor", draws))
    return conditions


def evaluate_heatmap(
    net: HeatmapNet,
    images: torch.Tensor,
    landmarks: np.ndarray | torch.Tensor,
    train_mean_shape: np.ndarray | None = None,
    camera: torch.nn.Module | None = None,
    batch_size: int = 32,
    noise_seeds: Sequence[int] = (),
) -> HeatmapReport:
    """U's NME next to the two mean-shape baselines on ``[N, 3, S, S]`` aligned faces with their
    dlib ``landmarks`` ``[N, 68, 2]`` (pixels at S); a ``camera`` adds the row through the lens
    (``lens``: the noise-free optical image; the truth stays dlib's landmarks on the clean image)
    and, with ``noise_seeds``, the row ``lens+sensor``: the captures as the sensor stores them
    (:meth:`privlens.optics.camera.Camera.readout`, shot and read noise at the camera's light,
    quantised), one draw per seed, U's NME averaged over the draws (``n`` stays the faces)."""
    truth = np.asarray(torch.as_tensor(landmarks).cpu(), np.float64)
    if images.dim() != 4 or len(images) != len(truth) or len(images) == 0:
        raise ValueError(f"need N >= 1 images [N, 3, S, S] and N landmark sets, got {tuple(images.shape)}")
    own = inter_ocular_nme(truth.mean(axis=0), truth).mean()
    train = None if train_mean_shape is None else float(inter_ocular_nme(train_mean_shape, truth).mean())
    conditions = u_inputs(images, camera, noise_seeds, batch_size)
    rows = []
    scale = max(spread(truth), 1e-9)
    for name, draws in conditions:
        predicted = [predict_landmarks(net, inputs, batch_size) for inputs in draws]
        leak = landmark_leak(predicted, truth)
        rows.append(
            HeatmapRow(
                condition=name,
                n=len(truth),
                nme_u=float(np.mean([inter_ocular_nme(points, truth).mean() for points in predicted])),
                nme_train_mean=train,
                nme_own_mean=float(own),
                spread_ratio=float(np.mean([spread(points) for points in predicted])) / scale,
                **leak,
            )
        )
    return HeatmapReport(int(images.shape[-1]), rows)


def landmark_leak(predicted: Sequence[np.ndarray], truth: np.ndarray) -> dict[str, float]:
    """Rank-1 from U's landmarks (one ``[N, 68, 2]`` set per draw) against the ``truth`` photos'
    own, each face's hit averaged over the draws, with its bootstrap interval
    (``landmark_rank1``, ``landmark_rank1_lo``, ``landmark_rank1_hi``); empty for one face."""
    if len(truth) < 2:
        return {}
    per_face = np.mean([landmark_rank1_hits(points, truth) for points in predicted], axis=0)
    low, high = bootstrap_ci(per_face)
    return {"landmark_rank1": float(per_face.mean()), "landmark_rank1_lo": low, "landmark_rank1_hi": high}


def render_heatmap_report(report: HeatmapReport, fmt: str = "md") -> str:
    """The report as a Markdown table (``md``) or JSON (``json``)."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n"
    if fmt != "md":
        raise ValueError(f"format must be one of {', '.join(HEATMAP_FORMATS)}, got {fmt!r}")

    def cell(value: float | None, digits: int = 4) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = [
        f"# U's landmarks ({report.image_size} px, inter-ocular NME, 68 points vs dlib on the clean image)",
        "",
        "| condition | N | NME U | NME train mean shape | NME own mean shape (oracle) "
        "| U / oracle | U / train mean | spread U / dlib | rank-1 from U's landmarks [95 % CI] | chance |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        leak = (
            "n/a"
            if r.landmark_rank1 is None
            else f"{r.landmark_rank1:.3f} [{r.landmark_rank1_lo:.3f}, {r.landmark_rank1_hi:.3f}]"
        )
        lines.append(
            f"| {r.condition} | {r.n} | {cell(r.nme_u)} | {cell(r.nme_train_mean)} | {cell(r.nme_own_mean)} "
            f"| {cell(r.ratio_own_mean, 3)} | {cell(r.ratio_train_mean, 3)} | {cell(r.spread_ratio, 3)} "
            f"| {leak} | {r.chance_rank1:.3f} |"
        )
    lines.append("")
    lines.append(
        "- rank-1 from U's landmarks: the share of faces whose U landmarks lie nearest (shape space) to "
        "their own photo's dlib landmarks among the N photos, an attack on the capture that needs no "
        "restoration; meaningful only on faces U never trained on"
    )
    for key, value in report.sources.items():
        lines.append(f"- {key}: {value}")
    for note in report.notes:
        lines.append(f"- note: {note}")
    lines.append("")
    return "\n".join(lines)
