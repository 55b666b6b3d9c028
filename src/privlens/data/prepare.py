"""``privlens data prepare``: turn a folder of photos into an aligned face dataset.

For every image below ``src``: detect the best face, take dlib's 68 landmarks, align it FFHQ-style
(eyes level, see :mod:`privlens.faces.align`), resize to ``size`` and write a PNG. Output layout::

    dst/train/<relative path>.png     aligned faces (sub-folders of src are kept: they are domains)
    dst/val/<relative path>.png
    dst/landmarks.csv                 file,split,source,x0,y0,...,x67,y67 (aligned-PNG pixels)
    dst/skipped.txt                   <source file><TAB><reason>, for images left out
    dst/prepare.json                  the settings of the run
    dst/.prepare-journal.jsonl        one line per processed source file (for resuming)

The split is a stable hash of the relative path (about ``val_fraction`` of the files go to ``val``),
so a re-run puts every file in the same split. Re-running with the same settings resumes: files in
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

from privlens.data.images import ImageFileError, list_images, load_image
from privlens.faces.align import align_face
from privlens.faces.landmarks import face_landmarks
from privlens.files import atomic_path, atomic_write_text

JOURNAL = ".prepare-journal.jsonl"
SETTINGS = "prepare.json"


@dataclass
class PrepareReport:
    """What a run did: ``processed`` this run, ``resumed`` (done before), ``skipped`` (file, reason)."""

    dst: Path
    processed: int = 0
    resumed: int = 0
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
) -> PrepareReport:
    """Detect, align, crop and resize every face image below ``src`` into ``dst`` (see module)."""
    src, dst = Path(src), Path(dst)
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1], got {val_fraction}")
    if not src.is_dir():
        raise ImageFileError(f"not a folder: {src}")
    dst_resolved = dst.resolve()
    files = [p for p in list_images(src) if dst_resolved not in p.resolve().parents]
    dst.mkdir(parents=True, exist_ok=True)
    _check_settings(dst, {"size": size, "detector": detector, "val_fraction": val_fraction})

    journal_path = dst / JOURNAL
    done: dict[str, dict] = {}
    if journal_path.is_file():
        for line in journal_path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash: that file is redone
                continue
            done[entry["source"]] = entry

    report = PrepareReport(dst)
    with journal_path.open("a", encoding="utf-8") as journal:
        for path in tqdm(files, desc="prepare", unit="img", disable=not progress):
            relative = path.relative_to(src).as_posix()
            entry = done.get(relative)
            if entry and (entry["status"] == "skipped" or (dst / entry["file"]).is_file()):
                report.resumed += 1
                continue
            entry = _process(path, relative, dst, size, detector, val_fraction)
            done[relative] = entry
            journal.write(json.dumps(entry) + "\n")
            journal.flush()
            report.processed += 1

    _write_outputs(dst, [done[p.relative_to(src).as_posix()] for p in files], report)
    return report


def _process(path: Path, relative: str, dst: Path, size: int, detector: str, val_fraction: float) -> dict:
    try:
        image = load_image(path)
    except ImageFileError as error:
        return {"source": relative, "status": "skipped", "reason": f"unreadable: {error}"}
    found = face_landmarks(image, detector)
    if found is None:
        return {"source": relative, "status": "skipped", "reason": f"no face found ({detector})"}
    aligned = align_face(image, found[1], size)
    split = split_of(relative, val_fraction)
    output = Path(split) / Path(relative).with_suffix(".png")
    array = (aligned.image.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    _write_png(array, dst / output)
    return {
        "source": relative,
        "status": "ok",
        "file": output.as_posix(),
        "split": split,
        "landmarks": np.round(aligned.landmarks, 3).tolist(),
    }


def _write_outputs(dst: Path, entries: list[dict], report: PrepareReport) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "split", "source"] + [f"{axis}{k}" for k in range(68) for axis in "xy"])
    skipped = []
    for entry in entries:
        if entry["status"] == "ok":
            coords = [f"{v:.3f}" for point in entry["landmarks"] for v in point]
            writer.writerow([entry["file"], entry["split"], entry["source"], *coords])
            report.train += entry["split"] == "train"
            report.val += entry["split"] == "val"
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
