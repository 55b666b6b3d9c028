"""Anonymisation jobs on files: an image, a folder (images and videos below it) or a video.

Everything that can fail for a user's reason (model files, size, references, options) is checked
when an :class:`AnonymizeJob` is built, before anything is written. Then :meth:`AnonymizeJob.run`
writes, for every input, under ``out``:

* ``captures/<name>.png`` - what the privacy camera records (the raw input is never written);
* ``heatmaps/<name>.png`` - U's landmark heatmap of the capture with the decoded landmarks;
* ``anonymized/<name>_<k>.png`` for ``k = 0 .. num_refs - 1`` - the new faces;
* for a video ``<name>.mp4`` files instead, at the input's frame rate, with the same style slots
  (references or latents) for every frame, so the new identity is stable over the clip;
* ``anonymize.json`` - the settings and, per input, its outputs and where each new face took its
  style from (reference file, domain, latent code).

``<name>`` is the input's path relative to the input folder, without its suffix. A file that
cannot be read is skipped with the reason; every file is written under a temporary name and
renamed when complete, so an interrupted job never leaves a truncated file in place of a good one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from privlens.anonymize.models import (
    DEFAULT_SIZE,
    ModelPaths,
    lens_size,
    load_camera,
    load_generator,
    load_heatmap,
)
from privlens.anonymize.pipeline import (
    AnonymizedBatch,
    AnonymizeError,
    Anonymizer,
    GanBackend,
    WarpBackend,
    heatmap_image,
)
from privlens.anonymize.references import Reference, ReferenceSet, Slot, StylePlanner, load_references
from privlens.anonymize.video import VIDEO_SUFFIXES, VideoSink, iter_frame_batches, video_info
from privlens.data.images import IMAGE_SUFFIXES, ImageFileError, load_image, save_image
from privlens.files import atomic_write_text

MANIFEST = "anonymize.json"
VIDEO_OUT_SUFFIX = ".mp4"


@dataclass
class AnonymizeReport:
    """What a job wrote (``outputs``), what it skipped (with the reason) and its manifest."""

    outputs: list[Path] = field(default_factory=list)
    done: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    skipped_references: list[tuple[Path, str]] = field(default_factory=list)
    manifest: Path | None = None


def _save_png(image: torch.Tensor, path: Path) -> Path:
    """Write a PNG under a temporary name, then rename it onto ``path``."""
    partial = path.with_name(f".{path.stem}.partial.png")
    try:
        save_image(image, partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def list_inputs(source: Path, exclude: Path | None = None) -> list[Path]:
    """``source`` itself (an image or video file), or every image and video below a folder, sorted,
    leaving out anything under ``exclude`` (the output folder)."""
    if not source.exists():
        raise AnonymizeError(f"input not found: {source}")
    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    if source.is_file():
        if source.suffix.lower() not in suffixes:
            raise AnonymizeError(
                f"{source} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video "
                f"({', '.join(VIDEO_SUFFIXES)})"
            )
        return [source]
    excluded = exclude.resolve() if exclude is not None else None
    found = []
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in suffixes or path.name.startswith("."):
            continue
        if excluded is not None and path.resolve().is_relative_to(excluded):
            continue
        found.append(path)
    if not found:
        raise AnonymizeError(f"no images or videos found in {source}")
    return found


class AnonymizeJob:
    """A loaded pipeline and its style choices, ready to run on files.

    Args:
        models: lens, heatmap network and generator (``None``: warp), see
            :func:`privlens.anonymize.models.resolve_models`.
        reference: a reference image or folder (needed unless ``latent``).
        size: image side; default: the generator's (GAN), else the lens file's, else 256. A GAN
            only runs at its own size.
        num_refs: new faces per input. seed: seed of the reference/latent/domain choices.
        latent: styles from random latents through the mapping network (GAN only).
        domain: the generator domain to use (GAN only; default: per reference, see
            :class:`~privlens.anonymize.references.StylePlanner`).
        batch_size: images or frames per forward pass. device: torch device.
        log: receives one line per notice (skipped references, fallbacks).

    Raises :class:`AnonymizeError` for every user error, before anything is written.
    """

    def __init__(
        self,
        models: ModelPaths,
        reference: str | Path | None = None,
        size: int | None = None,
        num_refs: int = 1,
        seed: int = 0,
        latent: bool = False,
        domain: str | None = None,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.models, self.log = models, log or (lambda message: None)
        self.num_refs, self.seed, self.latent, self.domain = num_refs, seed, latent, domain
        if batch_size < 1:
            raise AnonymizeError(f"--batch-size must be at least 1, got {batch_size}")
        if num_refs < 1:
            raise AnonymizeError(f"--num-refs must be at least 1, got {num_refs}")
        self.batch_size = batch_size
        self.device = torch.device(device)
        gan = models.generator is not None
        if latent and not gan:
            raise AnonymizeError("--latent needs a GAN generator (the mapping network); warp has none")
        if domain is not None and not gan:
            raise AnonymizeError("--domain needs a GAN generator; the warp backend has no domains")
        if reference is not None and latent:
            self.log("--reference is not used with --latent (styles come from random latents)")
        if reference is None and not latent:
            raise AnonymizeError("give --reference (an image or a folder of faces), or --latent with a GAN")
        self.bundle = load_generator(models.generator, self.device) if gan else None
        if self.bundle is not None:
            if size is not None and size != self.bundle.image_size:
                raise AnonymizeError(
                    f"this generator was trained at {self.bundle.image_size} px; --size {size} does not fit"
                )
            size = self.bundle.image_size
        if size is None:
            size = lens_size(models.lens) or DEFAULT_SIZE
        if size < 8:
            raise AnonymizeError(f"--size must be at least 8, got {size}")
        self.size = size
        heatmap_net = load_heatmap(models.heatmap)
        camera = load_camera(models.lens, size)
        self.references = ReferenceSet()
        if not latent:
            try:
                self.references = load_references(reference, size)
            except ImageFileError as error:
                raise AnonymizeError(f"--reference: {error}") from error
            for path, reason in self.references.skipped:
                self.log(f"reference skipped: {path}: {reason}")
            if not self.references.references:
                raise AnonymizeError(f"no usable reference face in {reference} (no face found in any image)")
        refs: list[Reference] = self.references.references
        backend = GanBackend(self.bundle, refs, self.device) if gan else WarpBackend(refs)
        self.anonymizer = Anonymizer(camera, heatmap_net, backend, self.device)
        self._planner()  # check the options against the references and domains now

    def _planner(self) -> StylePlanner:
        try:
            return StylePlanner(
                self.num_refs,
                self.seed,
                num_references=len(self.references.references),
                latent_dim=self.bundle.latent_dim if self.latent else None,
                domains=list(self.bundle.domains) if self.bundle is not None else None,
                domain=self.domain,
                reference_folders=[r.folder for r in self.references.references],
            )
        except ValueError as error:
            raise AnonymizeError(str(error)) from error

    # -- provenance ------------------------------------------------------------------------------
    def _slot_record(self, slot: Slot) -> dict[str, Any]:
        record: dict[str, Any] = {
            "reference": str(self.references.references[slot.reference].path)
            if slot.reference is not None
            else None
        }
        if self.bundle is not None:
            record["domain"] = list(self.bundle.domains)[slot.domain] if slot.domain is not None else None
        if slot.latent is not None:
            record["latent"] = [round(float(v), 6) for v in slot.latent]
        return record

    def settings(self) -> dict[str, Any]:
        return {
            "backend": self.models.backend,
            "lens": self.models.lens,
            "heatmap": str(self.models.heatmap),
            "generator": str(self.models.generator) if self.models.generator else "warp",
            "size": self.size,
            "num_refs": self.num_refs,
            "seed": self.seed,
            "latent": self.latent,
            "domain": self.domain,
            "references_used": [str(r.path) for r in self.references.references],
            "references_skipped": [[str(p), reason] for p, reason in self.references.skipped],
        }

    # -- running ---------------------------------------------------------------------------------
    def run(self, source: str | Path, out: str | Path, progress: bool = True) -> AnonymizeReport:
        """Anonymise ``source`` (image, folder or video) into ``out``; see the module notes."""
        from tqdm import tqdm

        source, out = Path(source), Path(out)
        inputs = list_inputs(source, exclude=out)
        root = source if source.is_dir() else source.parent
        names = [path.relative_to(root).with_suffix("") for path in inputs]
        clashes = sorted({str(n) for n in names if names.count(n) > 1})
        if clashes:
            raise AnonymizeError(
                f"inputs that differ only in their suffix would overwrite each other's outputs: {clashes}"
            )
        videos = {p for p in inputs if p.suffix.lower() in VIDEO_SUFFIXES}
        total = len(inputs) - len(videos)
        infos = {}
        report = AnonymizeReport(skipped_references=list(self.references.skipped))
        for path in sorted(videos):
            try:
                infos[path] = video_info(path)
                total += infos[path].frame_count
            except ImageFileError as error:
                report.skipped.append((path, str(error)))
        planner = self._planner()
        records: list[dict[str, Any]] = []
        bar = tqdm(total=total, unit="img", disable=not progress, desc="anonymize")
        try:
            batch: list[tuple[Path, Path, torch.Tensor, list[Slot]]] = []
            for path, name in zip(inputs, names, strict=True):
                if path in videos:
                    if path in infos:
                        self._flush(batch, out, report, records, bar)
                        self._video(path, name, infos[path], planner.next(), out, report, records, bar)
                    continue
                try:
                    image = load_image(path, self.size)
                except ImageFileError as error:
                    report.skipped.append((path, str(error)))
                    bar.update(1)
                    continue
                batch.append((path, name, image, planner.next()))
                if len(batch) == self.batch_size:
                    self._flush(batch, out, report, records, bar)
            self._flush(batch, out, report, records, bar)
        finally:
            bar.close()
        manifest = {
            "settings": self.settings(),
            "inputs": records,
            "skipped_inputs": [[str(p), reason] for p, reason in report.skipped],
        }
        if report.done:
            report.manifest = atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        return report

    def _flush(self, batch, out: Path, report: AnonymizeReport, records: list, bar) -> None:
        if not batch:
            return
        scenes = torch.stack([image for _, _, image, _ in batch])
        result: AnonymizedBatch = self.anonymizer.run(scenes, [slots for *_, slots in batch])
        for i, (path, name, _, slots) in enumerate(batch):
            capture = _save_png(result.captures[i], out / "captures" / f"{name}.png")
            picture = heatmap_image(result.heatmaps[i], result.landmarks[i], self.size)
            heatmap = _save_png(picture, out / "heatmaps" / f"{name}.png")
            faces = [
                _save_png(result.faces[i, k], out / "anonymized" / f"{name}_{k}.png")
                for k in range(len(slots))
            ]
            report.outputs += [capture, heatmap, *faces]
            report.done.append(path)
            records.append(self._record(path, out, capture, heatmap, faces, slots))
            bar.update(1)
        batch.clear()

    def _record(self, path, out, capture, heatmap, faces, slots, **extra) -> dict[str, Any]:
        return {
            "input": str(path),
            "capture": capture.relative_to(out).as_posix(),
            "heatmap": heatmap.relative_to(out).as_posix(),
            "faces": [
                {"file": face.relative_to(out).as_posix(), **self._slot_record(slot)}
                for face, slot in zip(faces, slots, strict=True)
            ],
            **extra,
        }

    def _video(self, path, name, info, slots: list[Slot], out, report, records, bar) -> None:
        """One clip, streamed in batches of frames; the same ``slots`` for every frame."""
        targets = {
            "capture": out / "captures" / f"{name}{VIDEO_OUT_SUFFIX}",
            "heatmap": out / "heatmaps" / f"{name}{VIDEO_OUT_SUFFIX}",
            **{k: out / "anonymized" / f"{name}_{k}{VIDEO_OUT_SUFFIX}" for k in range(len(slots))},
        }
        if not info.fps_known:
            self.log(f"{path}: frame rate unknown, writing {info.fps:g} fps")
        sinks: dict[Any, VideoSink] = {}
        try:
            for key, target in targets.items():
                sinks[key] = VideoSink(target, info.fps, self.size)
            for frames in iter_frame_batches(path, self.size, self.batch_size):
                result = self.anonymizer.run(frames, [slots] * len(frames))
                sinks["capture"].write(result.captures)
                sinks["heatmap"].write(
                    torch.stack(
                        [
                            heatmap_image(h, p, self.size)
                            for h, p in zip(result.heatmaps, result.landmarks, strict=True)
                        ]
                    )
                )
                for k in range(len(slots)):
                    sinks[k].write(result.faces[:, k])
                bar.update(len(frames))
        except BaseException:
            for sink in sinks.values():
                sink.abort()
            raise
        count = sinks["capture"].frames
        written = {key: sink.finish() for key, sink in sinks.items()}
        faces = [written[k] for k in range(len(slots))]
        report.outputs += list(written.values())
        report.done.append(path)
        records.append(
            self._record(
                path, out, written["capture"], written["heatmap"], faces, slots, frames=count, fps=info.fps
            )
        )
