"""``privlens data prepare``: turn a folder of photos into an aligned face dataset.

For every image below ``src`` (read upright: EXIF orientation applied): detect every face at
least ``min_face`` pixels wide (the ``max_faces`` widest when there are more; with dlib's HOG
detector, faces beyond the best need a score of :data:`HOG_EXTRA_MIN_SCORE`), take dlib's 68
landmarks of each, align it FFHQ-style (eyes level, see :mod:`privlens.faces.align`; beyond the
photo's border the edge pixels are repeated, never mirrored, so no "ghost" face appears), resize to
``size`` and write one PNG per face, numbered left to right. Output layout::

    dst/train/<relative path>_<k>.png aligned face k of a photo (sub-folders of src are kept: they
                                      are domains)
    dst/val/<relative path>_<k>.png
    dst/landmarks.csv                 file,split,source,x0,y0,...,x67,y67 (aligned-PNG pixels)
    dst/skipped.txt                   <source file><TAB><reason>, for images left out
    dst/prepare.json                  the settings of the run
    dst/.prepare-journal.jsonl        one line per processed source file (for resuming)

The split is a stable hash of the photo's relative path (about ``val_fraction`` of the photos go
to ``val``; all faces of a photo go to the same split), so a re-run puts every file in the same
split. Re-running with the same settings resumes: files in
the journal whose output exists are not processed again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from privlens.data.images import ImageFileError, list_images
from privlens.faces.align import align_face
from privlens.faces.detect import detect_faces
from privlens.faces.landmarks import landmarks68
from privlens.files import atomic_path, atomic_write_text

JOURNAL = ".prepare-journal.jsonl"
HOG_EXTRA_MIN_SCORE = 0.3
"""dlib's HOG detector: faces beyond the best one need this SVM score (its weak detections on a
portrait are mostly clothing or background; the best face is kept at any score)."""
SETTINGS = "prepare.json"
DETECT_SIDE = 2048
"""Faces are detected on a copy whose longer side is at most this (pixels); landmarks and crops
use the photo as read (up to 4096 px). dlib's HOG on a 4000 px photo took 0.5 GB."""


@dataclass
class PrepareReport:
    """What a run did: ``processed`` this run, ``resumed`` (done before), ``skipped`` (file, reason)."""

    dst: Path
    processed: int = 0
    resumed: int = 0
    faces_left_out: int = 0
    train: int = 0
    val: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def split_of(relative: str, val_fraction: float) -> str:
    """``"val"`` for a stable ``val_fraction`` of relative paths, else ``"train"``."""
    bucket = int(hashlib.sha1(relative.encode("utf-8")).hexdigest()[:8], 16) % 10_000
    return "val" if bucket < round(val_fraction * 10_000) else "train"


def _write_png(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as temporary:
        Image.fromarray(array).save(temporary, format="PNG")


def _check_settings(dst: Path, settings: dict) -> None:
    path = dst / SETTINGS
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != settings:
            raise ValueError(
                f"{dst} was prepared with other settings ({previous}); use a new folder or the same settings"
            )
    else:
        atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def prepare_faces(
    src: str | Path,
    dst: str | Path,
    size: int = 256,
    detector: str = "dlib",
    val_fraction: float = 0.1,
    progress: bool = True,
    min_face: float = 32.0,
    max_faces: int | None = None,
) -> PrepareReport:
    """Detect, align, crop and resize every face of the images below ``src`` into ``dst`` (see
    module). ``min_face``: smallest face width kept (photo pixels); ``max_faces``: at most this
    many faces per photo, the widest (``None``: all)."""
    src, dst = Path(src), Path(dst)
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    if min_face < 0:
        raise ValueError(f"min_face must be non-negative, got {min_face}")
    if max_faces is not None and max_faces < 1:
        raise ValueError(f"max_faces must be at least 1, got {max_faces}")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1], got {val_fraction}")
    if not src.is_dir():
        raise ImageFileError(f"not a folder: {src}")
    dst_resolved = dst.resolve()
    files = [p for p in list_images(src) if dst_resolved not in p.resolve().parents]
    dst.mkdir(parents=True, exist_ok=True)
    settings = {"size": size, "detector": detector, "val_fraction": val_fraction}
    settings |= {"min_face": min_face, "max_faces": max_faces, "layout": "one file per face"}
    _check_settings(dst, settings)

    journal_path = dst / JOURNAL
    done: dict[str, dict] = {}
    if journal_path.is_file():
        for line in journal_path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash: that file is redone
                continue
            if entry.get("status") == "ok" and "faces" not in entry:
                continue  # a journal line of the one-face-per-photo layout: redone
            done[entry["source"]] = entry

    report = PrepareReport(dst)
    with journal_path.open("a", encoding="utf-8") as journal:
        for path in tqdm(files, desc="prepare", unit="img", disable=not progress):
            relative = path.relative_to(src).as_posix()
            entry = done.get(relative)
            if entry and (
                entry["status"] == "skipped" or all((dst / face["file"]).is_file() for face in entry["faces"])
            ):
                report.resumed += 1
                continue
            entry = _process(path, relative, dst, size, detector, val_fraction, min_face, max_faces)
            done[relative] = entry
            journal.write(json.dumps(entry) + "\n")
            journal.flush()
            report.processed += 1

    _write_outputs(dst, [done[p.relative_to(src).as_posix()] for p in files], report)
    return report


def _process(
    path: Path,
    relative: str,
    dst: Path,
    size: int,
    detector: str,
    val_fraction: float,
    min_face: float,
    max_faces: int | None,
) -> dict:
    from privlens.data.photos import read_photo

    try:
        # shrunk on decode to a 4096 px longer side: memory stays bounded for huge photos (a
        # 12000 x 12000 PNG took 7.4 GB at full size) and the crops are at most `size` px anyway
        # (and faces are detected on a copy of at most DETECT_SIDE px: HOG on 4000 px took 0.5 GB)
        image = read_photo(path, max_side=max(4096, 4 * size)).rgb
    except ImageFileError as error:
        return {"source": relative, "status": "skipped", "reason": f"unreadable: {error}"}
    faces = detect_faces(image, detector, min_face=min_face, max_side=DETECT_SIDE)
    if detector == "dlib":
        faces = faces[:1] + [face for face in faces[1:] if face.score >= HOG_EXTRA_MIN_SCORE]
    if not faces:
        return {"source": relative, "status": "skipped", "reason": f"no face found ({detector})"}
    left_out = 0
    if max_faces is not None and len(faces) > max_faces:
        left_out = len(faces) - max_faces
        faces = sorted(faces, key=lambda face: -face.width)[:max_faces]
    faces = sorted(faces, key=lambda face: (face.box[0] + face.box[2]) / 2)  # left to right
    split = split_of(relative, val_fraction)
    stem = Path(split) / Path(relative).with_suffix("")
    records = []
    for index, face in enumerate(faces):
        aligned = align_face(image, landmarks68(image, face), size)
        output = stem.with_name(f"{stem.name}_{index}.png")
        array = (aligned.image.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        _write_png(array, dst / output)
        records.append(
            {
                "file": output.as_posix(),
                "box": [round(float(v), 1) for v in face.box],
                "landmarks": np.round(aligned.landmarks, 3).tolist(),
            }
        )
    return {"source": relative, "status": "ok", "split": split, "faces": records, "left_out": left_out}


def _write_outputs(dst: Path, entries: list[dict], report: PrepareReport) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "split", "source"] + [f"{axis}{k}" for k in range(68) for axis in "xy"])
    skipped = []
    for entry in entries:
        if entry["status"] == "ok":
            for face in entry["faces"]:
                coords = [f"{v:.3f}" for point in face["landmarks"] for v in point]
                writer.writerow([face["file"], entry["split"], entry["source"], *coords])
                report.train += entry["split"] == "train"
                report.val += entry["split"] == "val"
            report.faces_left_out += entry.get("left_out", 0)
        else:
            skipped.append((entry["source"], entry["reason"]))
    report.skipped = skipped
    atomic_write_text(dst / "landmarks.csv", buffer.getvalue())
    atomic_write_text(dst / "skipped.txt", "".join(f"{s}\t{r}\n" for s, r in skipped))


def read_landmarks_csv(path: str | Path) -> dict[str, tuple[str, str, np.ndarray]]:
    """``landmarks.csv`` -> ``{file: (split, source, [68, 2] array)}``."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    return {
        name: (split, source, np.array(values, dtype=np.float64).reshape(68, 2))
        for name, split, source, *values in rows
    }
