"""``privlens eval pairs``: the paper's protocol on matched original / de-identified images.

Files are matched by their path relative to each folder, without the suffix (``a/b.jpg`` matches
``a/b.png``). For every pair the best face is detected on both sides with dlib (HOG + 68 points)
and MTCNN (box + 5 points); a side without a face is counted and excluded from that detector's
pair metrics, never crashed on. Pair metrics are averaged over the pairs where both sides have a
face (``n`` says how many). De-identified images of another size are resized to the original's.

Metrics (column, direction): DIS per identity backend (higher = identity better hidden),
landmark and box error with dlib and MTCNN (pixels, lower = geometry better kept), face
detection rate FD on the de-identified images (higher = faces still found), FID and FD-dlib
between the two sets (lower = more realistic), LPIPS between pairs. A metric whose weights are
absent is listed as unavailable with the reason.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from privlens.data.images import ImageFileError, list_images, load_image
from privlens.eval.frechet import FD_DLIB, fd_dlib
from privlens.eval.geometry import FaceGeometry, box_error, geometry_of, landmark_error
from privlens.eval.identity import IDENTITY_BACKENDS, DlibEmbedder, FacenetEmbedder
from privlens.eval.weights import MetricUnavailableError, local_weights
from privlens.faces.detect import Face, best_face

TABLE_FORMATS = ("md", "csv", "json")
DIS_COLUMNS = {
    "dlib": "DIS FR (dlib)",
    "facenet-vggface2": "DIS FaceNet-VGGFace2",
    "facenet-casia": "DIS FaceNet-CASIA",
}
HIGHER, LOWER, NEUTRAL = "higher", "lower", ""


@dataclass
class EvalOptions:
    """Which metrics to compute and where their weights are (``None``: env var or download)."""

    identity: tuple[str, ...] = IDENTITY_BACKENDS
    facenet_weights: dict[str, str | Path | None] = field(default_factory=dict)
    inception_weights: str | Path | None = None
    lpips_weights: str | Path | None = None
    lpips_net: str = "alex"
    fid: bool = True
    lpips: bool = True
    batch_size: int = 16
    progress: bool = True
    analysis_px: int = 0
    """Upsample (bicubic) images smaller than this before face analysis (dlib's HOG detector needs
    faces of about 80 px); landmark and box errors are reported in the images' own pixels."""


@dataclass
class Metric:
    name: str
    value: float | None
    count: int
    better: str
    unit: str = ""


@dataclass
class PairsReport:
    originals: str
    deidentified: str
    pairs: int
    detected: dict[str, dict[str, int]]  # detector -> {"originals": n, "deidentified": n}
    metrics: list[Metric]
    unavailable: dict[str, str]
    unmatched: list[str]
    unreadable: list[tuple[str, str]]
    per_pair: list[dict] = field(default_factory=list)  # name, faces found, every pair value

    def value(self, name: str) -> float | None:
        return next((m.value for m in self.metrics if m.name == name), None)

    def to_dict(self) -> dict:
        return asdict(self)


def match_pairs(originals: str | Path, deidentified: str | Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Pairs matched by relative path without suffix, and the names present on one side only."""
    originals, deidentified = Path(originals), Path(deidentified)

    def keyed(root: Path) -> dict[str, Path]:
        files = list_images(root)
        base = root if root.is_dir() else root.parent
        return {p.relative_to(base).with_suffix("").as_posix(): p for p in files}

    left, right = keyed(originals), keyed(deidentified)
    pairs = [(left[k], right[k]) for k in sorted(left.keys() & right.keys())]
    unmatched = sorted(left.keys() ^ right.keys())
    if not pairs:
        raise ImageFileError(f"no file names in common between {originals} and {deidentified}")
    return pairs, unmatched


@dataclass
class _Side:
    image: torch.Tensor
    faces: dict[str, Face | None]
    geometry: dict[str, FaceGeometry | None]
    pixel: float = 1.0  # size of an analysed pixel in the image's own pixels


def _analyse(image: torch.Tensor, analysis_px: int = 0) -> _Side:
    side = image.shape[-1]
    if side < analysis_px:
        image = F.interpolate(image[None], size=(analysis_px,) * 2, mode="bicubic", align_corners=False)
        image = image[0].clamp(0, 1)
    faces = {d: best_face(image, d) for d in ("dlib", "mtcnn")}
    geometry = {d: None if f is None else geometry_of(image, f) for d, f in faces.items()}
    return _Side(image, faces, geometry, side / image.shape[-1])


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def check_backends(identity: tuple[str, ...]) -> None:
    """Raise ``ValueError`` for an unknown identity backend name."""
    for backend in identity:
        if backend not in IDENTITY_BACKENDS:
            raise ValueError(f"unknown identity backend {backend!r}; expected {', '.join(IDENTITY_BACKENDS)}")


def make_embedders(
    options: EvalOptions,
) -> tuple[dict[str, DlibEmbedder | FacenetEmbedder | None], dict[str, str]]:
    """One embedder per identity backend of ``options`` (``None`` with a reason if unavailable)."""
    check_backends(options.identity)
    unavailable: dict[str, str] = {}
    embedders: dict[str, DlibEmbedder | FacenetEmbedder | None] = {}
    for backend in options.identity:
        try:
            embedders[backend] = (
                DlibEmbedder()
                if backend == "dlib"
                else FacenetEmbedder(backend, options.facenet_weights.get(backend))
            )
        except MetricUnavailableError as error:
            embedders[backend] = None
            unavailable[DIS_COLUMNS[backend]] = error.reason
    return embedders, unavailable


def evaluate_pairs(
    originals: str | Path, deidentified: str | Path, options: EvalOptions | None = None
) -> PairsReport:
    """Run the protocol (see module docstring) and return the report."""
    options = options or EvalOptions()
    check_backends(options.identity)
    pairs, unmatched = match_pairs(originals, deidentified)
    # a weights file the user named must exist: say so before any work is done
    if options.fid:
        local_weights("FID", options.inception_weights)
    if options.lpips:
        local_weights("LPIPS", options.lpips_weights)
    embedders, unavailable = make_embedders(options)

    images: list[tuple[torch.Tensor, torch.Tensor]] = []
    names: list[str] = []
    unreadable: list[tuple[str, str]] = []
    base = Path(originals) if Path(originals).is_dir() else Path(originals).parent
    for first, second in tqdm(pairs, desc="reading", unit="pair", disable=not options.progress):
        try:
            images.append((load_image(first), load_image(second)))
        except ImageFileError as error:
            unreadable.append((f"{first.name} / {second.name}", str(error)))
            continue
        names.append(first.relative_to(base).with_suffix("").as_posix())
    report = evaluate_images(
        [a for a, _ in images], [b for _, b in images], names, options, embedders, unavailable
    )
    report.originals, report.deidentified = str(originals), str(deidentified)
    report.unmatched, report.unreadable = unmatched, unreadable
    return report


def evaluate_images(
    originals: list[torch.Tensor],
    deidentified: list[torch.Tensor],
    names: list[str],
    options: EvalOptions,
    embedders: dict[str, DlibEmbedder | FacenetEmbedder | None],
    unavailable: dict[str, str],
    analysed: dict[int, _Side] | None = None,
) -> PairsReport:
    """The protocol on in-memory pairs (``[3, H, W]`` in [0, 1]); see :func:`evaluate_pairs`.

    ``embedders`` maps each identity backend to its embedder (``None``: unavailable, with the
    reason in ``unavailable``). ``analysed`` caches the face analysis of originals by ``id()`` of
    their tensor, so one original paired with several de-identified images is analysed once.
    """
    unavailable = dict(unavailable)
    cache = analysed if analysed is not None else {}
    sides: list[tuple[_Side, _Side]] = []
    per_pair: list[dict] = []
    triples = zip(originals, deidentified, names, strict=True)
    for a, b, name in tqdm(
        triples, total=len(names), desc="faces", unit="pair", disable=not options.progress
    ):
        if b.shape != a.shape:
            b = F.interpolate(b[None], size=a.shape[-2:], mode="bilinear", antialias=True)[0].clamp(0, 1)
        if id(a) not in cache:
            cache[id(a)] = _analyse(a, options.analysis_px)
        sides.append((cache[id(a)], _analyse(b, options.analysis_px)))
        faces = {
            d: [sides[-1][0].faces[d] is not None, sides[-1][1].faces[d] is not None]
            for d in ("dlib", "mtcnn")
        }
        per_pair.append({"name": name, "faces": faces})

    metrics: list[Metric] = []
    detected = {
        d: {
            "originals": sum(s[0].faces[d] is not None for s in sides),
            "deidentified": sum(s[1].faces[d] is not None for s in sides),
        }
        for d in ("dlib", "mtcnn")
    }
    dlib_embeddings: tuple[list, list] = ([], [])
    for backend, embedder in embedders.items():
        if embedder is None:
            metrics.append(Metric(DIS_COLUMNS[backend], None, 0, HIGHER))
            continue
        detector = embedder.detector
        first = embedder.embed([s[0].image for s in sides], [s[0].faces[detector] for s in sides])
        second = embedder.embed([s[1].image for s in sides], [s[1].faces[detector] for s in sides])
        distances = []
        for record, x, y in zip(per_pair, first, second, strict=True):
            if x is not None and y is not None:
                record[DIS_COLUMNS[backend]] = float(np.linalg.norm(x - y))
                distances.append(record[DIS_COLUMNS[backend]])
        metrics.append(Metric(DIS_COLUMNS[backend], _mean(distances), len(distances), HIGHER))
        if backend == "dlib":
            dlib_embeddings = ([x for x in first if x is not None], [y for y in second if y is not None])

    for detector, label in (("dlib", "dlib"), ("mtcnn", "MTCNN")):
        landmarks, boxes = [], []
        for record, (x, y) in zip(per_pair, sides, strict=True):
            pixel = x.pixel
            x, y = x.geometry[detector], y.geometry[detector]
            if x is not None and y is not None:
                record[f"LM {label}"] = landmark_error(x.points, y.points) * pixel
                record[f"Box {label}"] = box_error(x.box, y.box) * pixel
                landmarks.append(record[f"LM {label}"])
                boxes.append(record[f"Box {label}"])
        metrics.append(Metric(f"LM {label}", _mean(landmarks), len(landmarks), LOWER, "px"))
        metrics.append(Metric(f"Box {label}", _mean(boxes), len(boxes), LOWER, "px"))
    for detector, label in (("dlib", "dlib"), ("mtcnn", "MTCNN")):
        rate = 100.0 * detected[detector]["deidentified"] / len(sides) if sides else None
        metrics.append(Metric(f"Detection {label}", rate, len(sides), HIGHER, "%"))

    if options.fid:
        metrics.append(_fid_metric(sides, options, unavailable))
    if "dlib" in embedders:
        a, b = dlib_embeddings
        value = fd_dlib(np.stack(a), np.stack(b)) if min(len(a), len(b)) >= 2 else None
        if value is None:
            unavailable[FD_DLIB] = "needs at least 2 faces found by dlib on each side"
        metrics.append(Metric(FD_DLIB, value, min(len(a), len(b)), LOWER))
    if options.lpips:
        metrics.append(_lpips_metric(sides, per_pair, options, unavailable))
    return PairsReport("", "", len(sides), detected, metrics, unavailable, [], [], per_pair)


def _fid_metric(sides, options: EvalOptions, unavailable: dict[str, str]) -> Metric:
    from privlens.eval.fid import fd_between, inception_features, load_inception

    if len(sides) < 2:
        unavailable["FID"] = "needs at least 2 pairs"
        return Metric("FID", None, len(sides), LOWER)
    try:
        model = load_inception(options.inception_weights)
    except MetricUnavailableError as error:
        unavailable["FID"] = error.reason
        return Metric("FID", None, 0, LOWER)
    first = inception_features([s[0].image for s in sides], model, options.batch_size)
    second = inception_features([s[1].image for s in sides], model, options.batch_size)
    return Metric("FID", fd_between(first, second), len(sides), LOWER)


def _lpips_metric(sides, per_pair: list[dict], options: EvalOptions, unavailable: dict[str, str]) -> Metric:
    from privlens.eval.perceptual import load_lpips, lpips_distance

    try:
        model = load_lpips(options.lpips_net, options.lpips_weights)
    except MetricUnavailableError as error:
        unavailable["LPIPS"] = error.reason
        return Metric("LPIPS", None, 0, NEUTRAL)
    values = [float(lpips_distance(model, a.image, b.image)) for a, b in sides]
    for record, value in zip(per_pair, values, strict=True):
        record["LPIPS"] = value
    return Metric("LPIPS", _mean(values), len(values), NEUTRAL)


def _arrow(metric: Metric) -> str:
    return {HIGHER: " ↑", LOWER: " ↓"}.get(metric.better, "")


def _cell(metric: Metric) -> str:
    if metric.value is None:
        return "n/a"
    return (
        f"{metric.value:.1f}"
        if metric.unit == "%"
        else f"{metric.value:.3f}"
        if metric.value < 100
        else f"{metric.value:.1f}"
    )


def _row(report: PairsReport) -> tuple[list[str], list[str]]:
    header = ["method", "pairs", "faces dlib (orig/de-id)", "faces MTCNN (orig/de-id)"]
    values = [
        Path(report.deidentified).name or report.deidentified,
        str(report.pairs),
        f"{report.detected['dlib']['originals']}/{report.detected['dlib']['deidentified']}",
        f"{report.detected['mtcnn']['originals']}/{report.detected['mtcnn']['deidentified']}",
    ]
    for metric in report.metrics:
        unit = f" ({metric.unit})" if metric.unit else ""
        header.append(f"{metric.name}{unit}{_arrow(metric)}")
        values.append(_cell(metric))
    return header, values


def render_report(report: PairsReport, fmt: str = "md") -> str:
    """The report as a Markdown table (with notes), a one-row CSV, or JSON."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    header, values = _row(report)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([header, values])
        return buffer.getvalue()
    if fmt != "md":
        raise ValueError(f"format must be one of {TABLE_FORMATS}, got {fmt!r}")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        "| " + " | ".join(values) + " |",
        "",
    ]
    counts = ", ".join(f"{m.name} n={m.count}" for m in report.metrics if m.value is not None)
    lines.append(f"Pair metrics average the pairs where both sides have a face ({counts}).")
    for name, reason in report.unavailable.items():
        lines.append(f"- unavailable: {name}: {reason}")
    if report.unmatched:
        lines.append(
            f"- {len(report.unmatched)} file(s) without a partner: {', '.join(report.unmatched[:10])}"
        )
    for name, reason in report.unreadable:
        lines.append(f"- unreadable pair {name}: {reason}")
    return "\n".join(lines) + "\n"
