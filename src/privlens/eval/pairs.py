"""``privlens eval pairs``: the paper's protocol on matched original / de-identified images.

Files are matched by their path relative to each folder, without the suffix (``a/b.jpg`` matches
``a/b.png``). In every pair, every face is detected on both sides with dlib (HOG + 68 points) and
MTCNN (box + 5 points), and the faces are matched between the two sides by box overlap (IoU at
least :data:`MATCH_IOU`, greedy, best first). A face without a partner is counted and listed, never
crashed on. Face metrics are averaged over matched faces (``n`` says how many). De-identified
images of another size are resized to the original's.

Metrics (column, direction): DIS per identity backend over matched faces (higher = identity
better hidden); Leaks: original faces (dlib) whose identity is still there (dlib distance below
:data:`SAME_PERSON`, the output embedded at the partner's box, or at the original's box when the
face has no partner: a face left untouched but missed by the detector still counts); NME, the
landmark error normalised by the inter-ocular distance (outer eye corners for dlib's 68 points,
the eye centres for MTCNN's 5; percent) with the pixel error LM beside it, and the box error
(pixels; lower = geometry better kept); Detection: the share of original faces that have a
partner on the de-identified side (originals without a face do not count); FID and FD-dlib
between the two sets (lower = more realistic), LPIPS between pairs. A metric whose weights are
absent is listed as unavailable with the reason.

Images whose longer side exceeds :data:`ANALYSIS_MAX_SIDE` are read shrunk by an integer factor
(while they are decoded, see :mod:`privlens.data.images`): their faces are found and compared,
and FID/LPIPS computed, on those reduced copies; box and landmark errors are still given in the
original's pixels, and the report lists such pairs. Memory thus stays bounded for huge photos.
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

from privlens.data.images import ImageFileError, image_size, list_images, load_image
from privlens.eval.frechet import FD_DLIB, fd_dlib
from privlens.eval.geometry import FaceGeometry, box_error, geometry_of, landmark_error
from privlens.eval.identity import IDENTITY_BACKENDS, DlibEmbedder, FacenetEmbedder
from privlens.eval.weights import MetricUnavailableError, local_weights
from privlens.faces.detect import Face, detect_faces, match_boxes

TABLE_FORMATS = ("md", "csv", "json")
DIS_COLUMNS = {
    "dlib": "DIS FR (dlib)",
    "facenet-vggface2": "DIS FaceNet-VGGFace2",
    "facenet-casia": "DIS FaceNet-CASIA",
}
HIGHER, LOWER, NEUTRAL = "higher", "lower", ""
DETECTORS = ("dlib", "mtcnn")
MATCH_IOU = 0.3
"""Smallest box overlap (intersection over union) for two faces to be the same face."""
SAME_PERSON = 0.6
"""dlib identity distance below which two faces are the same person (the face_recognition
library's threshold)."""
LEAKS = "Leaks (dlib)"
ANALYSIS_MAX_SIDE = 1024
"""Images are analysed with their longer side at most this (pixels; integer shrinking on decode):
a 12000 x 12000 PNG at full size took over 14 GB (dlib's HOG doubles the image), at 2048 px
still 1.3 GB. The paper's data sets (at most 1024 px) are analysed at full size; in a larger
photo, faces below about 4 % of its longer side (40 px at 1024) may be missed."""


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
    detected: dict[str, dict[str, int]]  # detector -> faces {"originals": n, "deidentified": n}
    metrics: list[Metric]
    unavailable: dict[str, str]
    unmatched: list[str]
    unreadable: list[tuple[str, str]]
    per_pair: list[dict] = field(default_factory=list)  # name, faces found, every pair value
    unmatched_faces: dict[str, dict[str, int]] = field(default_factory=dict)  # detector -> counts
    reduced: list[str] = field(default_factory=list)  # pairs analysed on reduced copies

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
    faces: dict[str, list[Face]]
    geometry: dict[str, list[FaceGeometry]]
    pixel: float = 1.0  # size of an analysed pixel in the image's own pixels


def _analyse(image: torch.Tensor, analysis_px: int = 0, scale: float = 1.0) -> _Side:
    """Faces and geometry of one image; ``scale``: original pixels per pixel of ``image`` (an
    image read reduced), so that reported pixel errors are in the original's pixels."""
    side = image.shape[-1]
    if side < analysis_px:
        image = F.interpolate(image[None], size=(analysis_px,) * 2, mode="bicubic", align_corners=False)
        image = image[0].clamp(0, 1)
    faces = {d: detect_faces(image, d) for d in DETECTORS}
    geometry = {d: [geometry_of(image, f) for f in found] for d, found in faces.items()}
    return _Side(image, faces, geometry, scale * side / image.shape[-1])


def load_bounded(path: Path, max_side: int | None = None) -> tuple[torch.Tensor, float]:
    """An image read with its longer side at most ``max_side`` (default
    :data:`ANALYSIS_MAX_SIDE`; integer shrinking on decode) and the original's pixels per pixel
    of the result (1.0 when it was not reduced)."""
    width, height = image_size(path)
    image = load_image(path, max_side=max_side or ANALYSIS_MAX_SIDE)
    return image, max(width, height) / max(image.shape[-2:])


def match_faces(original: list[Face], deidentified: list[Face]) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of the same face on both sides: box overlap at least :data:`MATCH_IOU`."""
    return match_boxes([f.box for f in original], [f.box for f in deidentified], MATCH_IOU)


def inter_ocular(points: np.ndarray) -> float:
    """Inter-ocular distance of ``[68, 2]`` (outer eye corners 36, 45) or ``[5, 2]`` MTCNN points
    (the two eye centres), pixels."""
    points = np.asarray(points, dtype=np.float64)
    a, b = (points[36], points[45]) if len(points) == 68 else (points[0], points[1])
    return float(np.hypot(*(a - b)))


def normalised_error(original: np.ndarray, other: np.ndarray) -> float | None:
    """Mean Euclidean point error divided by the original's inter-ocular distance, percent."""
    distance = inter_ocular(original)
    if distance <= 0:
        return None
    return 100.0 * float(np.linalg.norm(np.asarray(original) - np.asarray(other), axis=1).mean()) / distance


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
    scales: list[float] = []
    reduced: list[str] = []
    unreadable: list[tuple[str, str]] = []
    base = Path(originals) if Path(originals).is_dir() else Path(originals).parent
    for first, second in tqdm(pairs, desc="reading", unit="pair", disable=not options.progress):
        try:
            (a, scale), (b, other) = load_bounded(first), load_bounded(second)
        except ImageFileError as error:
            unreadable.append((f"{first.name} / {second.name}", str(error)))
            continue
        images.append((a, b))
        names.append(first.relative_to(base).with_suffix("").as_posix())
        scales.append(scale)
        if scale > 1.0 or other > 1.0:
            reduced.append(names[-1])
    report = evaluate_images(
        [a for a, _ in images], [b for _, b in images], names, options, embedders, unavailable, scales=scales
    )
    report.originals, report.deidentified = str(originals), str(deidentified)
    report.unmatched, report.unreadable, report.reduced = unmatched, unreadable, reduced
    return report


def evaluate_images(
    originals: list[torch.Tensor],
    deidentified: list[torch.Tensor],
    names: list[str],
    options: EvalOptions,
    embedders: dict[str, DlibEmbedder | FacenetEmbedder | None],
    unavailable: dict[str, str],
    analysed: dict[int, _Side] | None = None,
    scales: list[float] | None = None,
) -> PairsReport:
    """The protocol on in-memory pairs (``[3, H, W]`` in [0, 1]); see :func:`evaluate_pairs`.

    ``embedders`` maps each identity backend to its embedder (``None``: unavailable, with the
    reason in ``unavailable``). ``analysed`` caches the face analysis of originals by ``id()`` of
    their tensor, so one original paired with several de-identified images is analysed once.
    ``scales``: per pair, the original's pixels per pixel of the given original (images read
    reduced); pixel errors and boxes are reported in the original's pixels.
    """
    unavailable = dict(unavailable)
    cache = analysed if analysed is not None else {}
    sides: list[tuple[_Side, _Side]] = []
    per_pair: list[dict] = []
    triples = zip(originals, deidentified, names, scales or [1.0] * len(names), strict=True)
    for a, b, name, scale in tqdm(
        triples, total=len(names), desc="faces", unit="pair", disable=not options.progress
    ):
        if b.shape != a.shape:
            b = F.interpolate(b[None], size=a.shape[-2:], mode="bilinear", antialias=True)[0].clamp(0, 1)
        if id(a) not in cache:
            cache[id(a)] = _analyse(a, options.analysis_px, scale)
        x, y = cache[id(a)], _analyse(b, options.analysis_px, scale)
        sides.append((x, y))
        record: dict = {"name": name, "faces": {}, "matched": {}, "unmatched": {}}
        for d in DETECTORS:
            pairs = match_faces(x.faces[d], y.faces[d])
            record["faces"][d] = [len(x.faces[d]), len(y.faces[d])]
            record["matched"][d] = pairs
            left = [i for i in range(len(x.faces[d])) if i not in {p[0] for p in pairs}]
            right = [j for j in range(len(y.faces[d])) if j not in {p[1] for p in pairs}]
            record["unmatched"][d] = {
                "original": [_box(x.faces[d][i], x.pixel) for i in left],
                "deidentified": [_box(y.faces[d][j], y.pixel) for j in right],
            }
        per_pair.append(record)

    metrics: list[Metric] = []
    detected = {
        d: {
            "originals": sum(len(s[0].faces[d]) for s in sides),
            "deidentified": sum(len(s[1].faces[d]) for s in sides),
        }
        for d in DETECTORS
    }
    unmatched_faces = {
        d: {
            "originals": sum(len(r["unmatched"][d]["original"]) for r in per_pair),
            "deidentified": sum(len(r["unmatched"][d]["deidentified"]) for r in per_pair),
        }
        for d in DETECTORS
    }
    dlib_embeddings: tuple[list, list] = ([], [])
    for backend, embedder in embedders.items():
        if embedder is None:
            metrics.append(Metric(DIS_COLUMNS[backend], None, 0, HIGHER))
            continue
        detector = embedder.detector
        distances = []
        for record, (x, y) in zip(per_pair, sides, strict=True):
            pairs = record["matched"][detector]
            if not pairs:
                continue
            first = embedder.embed([x.image] * len(pairs), [x.faces[detector][i] for i, _ in pairs])
            second = embedder.embed([y.image] * len(pairs), [y.faces[detector][j] for _, j in pairs])
            values = [float(np.linalg.norm(u - v)) for u, v in zip(first, second, strict=True)]
            record[DIS_COLUMNS[backend]] = float(np.mean(values))
            record[f"{DIS_COLUMNS[backend]} per face"] = values
            distances += values
            if backend == "dlib":
                dlib_embeddings[0].extend(first)
                dlib_embeddings[1].extend(second)
        metrics.append(Metric(DIS_COLUMNS[backend], _mean(distances), len(distances), HIGHER))
    if embedders.get("dlib") is not None:
        metrics.append(_leaks(per_pair, sides, embedders["dlib"]))

    for detector, label in (("dlib", "dlib"), ("mtcnn", "MTCNN")):
        normalised, landmarks, boxes = [], [], []
        for record, (x, y) in zip(per_pair, sides, strict=True):
            pixel, values = x.pixel, {"nme": [], "lm": [], "box": []}
            for i, j in record["matched"][detector]:
                a, b = x.geometry[detector][i], y.geometry[detector][j]
                error = normalised_error(a.points, b.points)
                if error is not None:
                    values["nme"].append(error)
                values["lm"].append(landmark_error(a.points, b.points) * pixel)
                values["box"].append(box_error(a.box, b.box) * pixel)
            if values["lm"]:
                if values["nme"]:
                    record[f"NME {label}"] = float(np.mean(values["nme"]))
                record[f"LM {label}"] = float(np.mean(values["lm"]))
                record[f"Box {label}"] = float(np.mean(values["box"]))
            normalised += values["nme"]
            landmarks += values["lm"]
            boxes += values["box"]
        metrics.append(Metric(f"NME {label}", _mean(normalised), len(normalised), LOWER, "%"))
        metrics.append(Metric(f"LM {label}", _mean(landmarks), len(landmarks), LOWER, "px"))
        metrics.append(Metric(f"Box {label}", _mean(boxes), len(boxes), LOWER, "px"))
    for detector, label in (("dlib", "dlib"), ("mtcnn", "MTCNN")):
        total = detected[detector]["originals"]
        kept = sum(len(r["matched"][detector]) for r in per_pair)
        rate = 100.0 * kept / total if total else None
        metrics.append(Metric(f"Detection {label}", rate, total, HIGHER, "%"))

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
    return PairsReport("", "", len(sides), detected, metrics, unavailable, [], [], per_pair, unmatched_faces)


def _box(face: Face, pixel: float) -> list[float]:
    return [round(float(v) * pixel, 1) for v in face.box]


def _leaks(per_pair: list[dict], sides: list[tuple[_Side, _Side]], embedder) -> Metric:
    """Original dlib faces still recognisable in the output: the output embedded at the partner's
    box, or at the original's own box when the face has no partner (see the module notes)."""
    leaks, total = 0, 0
    for record, (x, y) in zip(per_pair, sides, strict=True):
        partner = dict(record["matched"]["dlib"])
        leaked = []
        for i, face in enumerate(x.faces["dlib"]):
            there = y.faces["dlib"][partner[i]] if i in partner else face
            a = embedder.embed_face(x.image, face)
            b = embedder.embed_face(y.image, there)
            total += 1
            if float(np.linalg.norm(a - b)) < SAME_PERSON:
                leaked.append(_box(face, x.pixel))
        leaks += len(leaked)
        record[LEAKS] = leaked
    return Metric(LEAKS, float(leaks) if total else None, total, LOWER, "faces")


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
    if metric.unit == "faces":
        return f"{int(metric.value)}/{metric.count}"
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
    if report.reduced:
        lines.append(
            f"- {len(report.reduced)} pair(s) analysed on copies reduced to at most {ANALYSIS_MAX_SIDE} px "
            f"(faces found and compared there; box and landmark errors in the original's pixels): "
            f"{', '.join(report.reduced[:10])}" + (" …" if len(report.reduced) > 10 else "")
        )
    for detector, counts in report.unmatched_faces.items():
        if counts["originals"] or counts["deidentified"]:
            where = [
                f"{r['name']} ({len(r['unmatched'][detector]['original'])}/"
                f"{len(r['unmatched'][detector]['deidentified'])})"
                for r in report.per_pair
                if r["unmatched"][detector]["original"] or r["unmatched"][detector]["deidentified"]
            ]
            lines.append(
                f"- faces without a partner ({detector}): {counts['originals']} original, "
                f"{counts['deidentified']} de-identified, in {', '.join(where[:10])}"
                + (" …" if len(where) > 10 else "")
            )
    leaked = [r["name"] for r in report.per_pair if r.get(LEAKS)]
    if leaked:
        lines.append(
            f"- {sum(len(r[LEAKS]) for r in report.per_pair)} face(s) still recognisable (dlib distance "
            f"< {SAME_PERSON}): {', '.join(leaked[:10])}" + (" …" if len(leaked) > 10 else "")
        )
    return "\n".join(lines) + "\n"
