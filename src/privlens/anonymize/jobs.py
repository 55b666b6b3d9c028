"""Anonymisation jobs on files: an image, a folder (images and videos below it) or a video.

Everything that can fail for a user's reason (model files, sizes, references, options) is checked
when an :class:`AnonymizeJob` is built, before anything is written. Then :meth:`AnonymizeJob.run`
writes, under ``out``, for every input ``<name>.<suffix>`` (its path relative to the input
folder) the same file with every face replaced (:mod:`privlens.anonymize.frames`):

* photos keep their size and format, upright (EXIF orientation applied), metadata dropped;
  pixels outside the face regions keep their exact values (bit for bit in lossless formats);
  photos above :data:`privlens.anonymize.regions.REGION_PIXELS` pixels are read and written in
  pieces (:mod:`privlens.anonymize.regions`), so memory follows the faces, not the photo;
* videos keep their size and frame rate (``.mp4``/``.avi`` as the input, other containers are
  written as ``.mp4``); faces are tracked (:mod:`privlens.anonymize.stream`) so that each person
  keeps one new identity; the audio track is copied when ffmpeg is installed, else dropped with
  a notice;
* a photo in which no face is found is copied unchanged with a notice (or left out with
  ``skip_no_face``); a face that cannot be replaced is pixelated and listed;
* ``anonymize.json``: the settings and, per photo, every face (box, what was done, the region
  changed, its style) and, per video, every track (frames, replaced and pixelated counts, style).

A file that cannot be read is skipped with the reason; files are written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from privlens.anonymize import regions
from privlens.anonymize.frames import PIXELATED, FaceFinder, FramePipeline, ModelPainter, Painter
from privlens.anonymize.models import (
    DEFAULT_SIZE,
    ModelPaths,
    load_camera,
    load_generator,
    load_heatmap,
    model_sizes,
)
from privlens.anonymize.pipeline import AnonymizeError, Anonymizer, GanBackend, WarpBackend
from privlens.anonymize.references import Reference, ReferenceSet, Slot, StylePlanner, load_references
from privlens.anonymize.stream import FrameStream
from privlens.anonymize.video import VIDEO_SUFFIXES, FrameSink, iter_frames, mux_audio, video_info
from privlens.data.images import IMAGE_SUFFIXES, ImageFileError
from privlens.data.large import LargeImageError, LargePhoto
from privlens.data.photos import Photo, read_photo, write_photo
from privlens.files import atomic_write_text
from privlens.nets import reads_warps

MANIFEST = "anonymize.json"
VIDEO_OUT_SUFFIXES = (".mp4", ".avi")
PHOTOS_PER_BATCH = 4


@dataclass
class AnonymizeReport:
    """What a job wrote (``outputs``), what it skipped (with the reason), the notices it gave,
    faces replaced and pixelated, and its manifest."""

    outputs: list[Path] = field(default_factory=list)
    done: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    skipped_references: list[tuple[Path, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    replaced: int = 0
    pixelated: int = 0
    manifest: Path | None = None


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


def output_name(relative: Path) -> Path:
    """The output path of an input (relative): the same, except videos in other containers -> .mp4."""
    if relative.suffix.lower() in VIDEO_SUFFIXES and relative.suffix.lower() not in VIDEO_OUT_SUFFIXES:
        return relative.with_suffix(".mp4")
    return relative


def check_outputs(source: Path, inputs: list[Path], targets: list[Path], out: Path, overwrite: bool) -> None:
    """The output-folder rules of :mod:`privlens.outputs`, for outputs that keep their inputs'
    suffixes (see :meth:`AnonymizeJob.run`)."""
    from privlens.outputs import OutputError, check_output_dir

    try:
        check_output_dir(out, [source])
    except OutputError as error:
        raise AnonymizeError(str(error)) from error
    sources = {path.resolve() for path in inputs}
    for path, target in zip(inputs, targets, strict=True):
        if target.resolve() in sources:
            raise AnonymizeError(f"the output {target} would overwrite the input {path}")
    existing = [target for target in targets if target.exists()]
    if existing and not overwrite:
        raise AnonymizeError(
            f"{len(existing)} output file(s) already exist (first: {existing[0]}); "
            "pass --overwrite to replace them"
        )


class AnonymizeJob:
    """A loaded pipeline and its style choices, ready to run on files.

    Args:
        models: lens, heatmap network and generator (``None``: warp), see
            :func:`privlens.anonymize.models.resolve_models`; may be ``None`` with ``painter``.
        reference: a reference image or folder (needed unless ``latent``).
        size: the models' image side; refused when it differs from what the model files say.
        seed: seed of the reference/latent/domain choices.
        latent: styles from random latents through the mapping network (GAN only).
        domain: the generator domain to use (GAN only).
        batch_size: face crops per forward pass (faces of several photos or frames share one).
        device: torch device. log: receives one line per notice.
        detector: ``mtcnn`` (default), ``dlib`` or ``dlib-cnn``. min_face: smallest face width
            (pixels of the photo). detect_side: detection runs on a copy shrunk to this side.
        check: reject (and pixelate) a new face in which no face is found.
        skip_no_face: leave photos without a face out of the output (default: copied unchanged).
        detect_every: videos: run the detector every k frames, track in between.
        smoothing: videos: landmark smoothing weight of a still face (1: none).
        painter: a ready :class:`~privlens.anonymize.frames.Painter` instead of the models.
        sensor_noise: simulate the sensor (shot and read noise at the lens file's light,
            quantisation; seeded by ``seed``) as a real camera stores its captures; ``False``
            gives U the noise-free optical image.

    Raises :class:`AnonymizeError` for every user error, before anything is written.
    """

    def __init__(
        self,
        models: ModelPaths | None,
        reference: str | Path | None = None,
        size: int | None = None,
        seed: int = 0,
        latent: bool = False,
        domain: str | None = None,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
        log: Callable[[str], None] | None = None,
        detector: str = "mtcnn",
        min_face: float = 24.0,
        detect_side: int = 960,
        check: bool = True,
        skip_no_face: bool = False,
        detect_every: int = 5,
        smoothing: float = 0.5,
        painter: Painter | None = None,
        reference_choice: str = "seeded",
        sensor_noise: bool = True,
    ) -> None:
        from privlens.faces.detect import DETECTORS

        self.models, self.log = models, log or (lambda message: None)
        self.seed, self.latent, self.domain = seed, latent, domain
        self.reference_choice, self.sensor_noise = reference_choice, sensor_noise
        self.skip_no_face, self.detect_every, self.smoothing = skip_no_face, detect_every, smoothing
        if batch_size < 1:
            raise AnonymizeError(f"--batch-size must be at least 1, got {batch_size}")
        if detector not in DETECTORS:
            raise AnonymizeError(f"--detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        if min_face < 8:
            raise AnonymizeError(f"--min-face must be at least 8 pixels, got {min_face:g}")
        if detect_side < 64:
            raise AnonymizeError(f"--detect-side must be at least 64 pixels, got {detect_side}")
        if detect_every < 1:
            raise AnonymizeError(f"--detect-every must be at least 1, got {detect_every}")
        if not 0.0 < smoothing <= 1.0:
            raise AnonymizeError(f"--smoothing must lie in (0, 1], got {smoothing:g}")
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.bundle = None
        self.references = ReferenceSet()
        if painter is None:
            if models is None:
                raise AnonymizeError("give the models (--run, or --lens and --heatmap) or a painter")
            painter = self._load(models, reference, size)
        self.size = painter.size
        self.settings_extra = {
            "detector": detector,
            "min_face": min_face,
            "detect_side": detect_side,
            "check": check,
            "detect_every": detect_every,
            "smoothing": smoothing,
            "reference_choice": reference_choice,
            "sensor_noise": self._sensor_record(painter),
        }
        finder = FaceFinder(detector, min_face, detect_side)
        self.pipeline = FramePipeline(painter, finder, check, batch_size, self._slot_record)
        self.planner()  # check the options against the references and domains now

    def _load(self, models: ModelPaths, reference, size: int | None) -> Painter:
        gan = models.generator is not None
        latent, domain = self.latent, self.domain
        if latent and not gan:
            raise AnonymizeError("--latent needs a GAN generator (the mapping network); warp has none")
        if domain is not None and not gan:
            raise AnonymizeError("--domain needs a GAN generator; the warp backend has no domains")
        if reference is not None and latent:
            self.log("--reference is not used with --latent (styles come from random latents)")
        if reference is None and not latent:
            raise AnonymizeError("give --reference (an image or a folder of faces), or --latent with a GAN")
        self.bundle = load_generator(models.generator, self.device) if gan else None
        if latent and self.bundle is not None and reads_warps(self.bundle.generator):
            raise AnonymizeError(
                f"{models.generator} paints from a warped reference face (content 'warp'): give "
                "--reference, not --latent"
            )
        known = model_sizes(models, self.bundle.image_size if self.bundle is not None else None)
        if size is not None and known is not None and size != known:
            raise AnonymizeError(f"the models were trained at {known} px; --size {size} does not fit them")
        size = size or known or DEFAULT_SIZE
        if size < 8:
            raise AnonymizeError(f"--size must be at least 8, got {size}")
        heatmap_net = load_heatmap(models.heatmap)
        camera = load_camera(models.lens, size)
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
        return ModelPainter(
            Anonymizer(
                camera, heatmap_net, backend, self.device, sensor_noise=self.sensor_noise, seed=self.seed
            )
        )

    def _sensor_record(self, painter: Painter) -> dict[str, Any] | bool:
        """The sensor the captures went through, for the manifest (``False``: noise-free)."""
        anonymizer = getattr(painter, "anonymizer", None)
        if anonymizer is None or not anonymizer.sensor_noise:
            return False
        config = anonymizer.camera.config
        return {
            "full_scale_e": config.full_scale_e,
            "read_noise_e": config.read_noise_e,
            "bit_depth": config.bit_depth,
        }

    def planner(self) -> StylePlanner | None:
        if not self.references.references and not self.latent:
            return None  # a painter of its own: no styles to choose
        try:
            return StylePlanner(
                1,
                self.seed,
                num_references=len(self.references.references),
                latent_dim=self.bundle.latent_dim if self.latent else None,
                domains=list(self.bundle.domains) if self.bundle is not None else None,
                domain=self.domain,
                reference_folders=[r.folder for r in self.references.references],
                reference_choice=self.reference_choice,
            )
        except ValueError as error:
            raise AnonymizeError(str(error)) from error

    # -- provenance ------------------------------------------------------------------------------
    def _slot_record(self, slot: Slot) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if slot.reference is not None:
            record["reference"] = str(self.references.references[slot.reference].path)
        if self.bundle is not None:
            record["domain"] = list(self.bundle.domains)[slot.domain] if slot.domain is not None else None
        if slot.latent is not None:
            record["latent"] = [round(float(v), 6) for v in slot.latent]
        return record

    def settings(self) -> dict[str, Any]:
        models = self.models
        return {
            "backend": models.backend if models is not None else "custom",
            "lens": models.lens if models is not None else None,
            "heatmap": str(models.heatmap) if models is not None else None,
            "generator": (str(models.generator) if models.generator else "warp")
            if models is not None
            else None,
            "size": self.size,
            "seed": self.seed,
            "latent": self.latent,
            "domain": self.domain,
            **self.settings_extra,
            "references_used": [str(r.path) for r in self.references.references],
            "references_skipped": [[str(p), reason] for p, reason in self.references.skipped],
        }

    # -- running ---------------------------------------------------------------------------------
    def run(
        self, source: str | Path, out: str | Path, progress: bool = True, overwrite: bool = False
    ) -> AnonymizeReport:
        """Anonymise ``source`` (image, folder or video) into ``out``; see the module notes.

        Refused before anything is written (:class:`AnonymizeError`): an output folder that is
        the input folder or lies inside it, an output that would replace an input, and existing
        outputs unless ``overwrite``."""
        from tqdm import tqdm

        source, out = Path(source), Path(out)
        inputs = list_inputs(source, exclude=out)
        root = source if source.is_dir() else source.parent
        names = [output_name(path.relative_to(root)) for path in inputs]
        clashes = sorted({str(n) for n in names if names.count(n) > 1})
        if clashes:
            raise AnonymizeError(f"inputs that would be written to the same output file: {clashes}")
        check_outputs(source, inputs, [out / name for name in names], out, overwrite)
        report = AnonymizeReport(skipped_references=list(self.references.skipped))
        planner = self.planner()
        records: list[dict[str, Any]] = []
        bar = tqdm(total=len(inputs), unit="file", disable=not progress, desc="anonymize")
        batch: list[tuple[Path, Path, Photo]] = []
        try:
            for path, name in zip(inputs, names, strict=True):
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    self._flush(batch, out, planner, report, records)
                    self._video(path, out, name, planner, report, records)
                    bar.update(1)
                    continue
                try:
                    in_regions, notice = regions.plan(path)
                    if notice:
                        report.notices.append(notice)
                    if in_regions:
                        self._flush(batch, out, planner, report, records)
                        self._large_photo(path, out / name, out, planner, report, records)
                        bar.update(1)
                        continue
                    batch.append((path, out / name, read_photo(path)))
                except (ImageFileError, LargeImageError) as error:
                    report.skipped.append((path, str(error)))
                    bar.update(1)
                    continue
                if len(batch) == PHOTOS_PER_BATCH:
                    bar.update(len(batch))
                    self._flush(batch, out, planner, report, records)
            bar.update(len(batch))
            self._flush(batch, out, planner, report, records)
        finally:
            bar.close()
        manifest = {
            "settings": self.settings(),
            "inputs": records,
            "skipped_inputs": [[str(p), reason] for p, reason in report.skipped],
        }
        if records:
            report.manifest = atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        return report

    def next_slot(self, planner: StylePlanner | None) -> Slot | None:
        return planner.next()[0] if planner is not None else None

    def _flush(self, batch, out: Path, planner, report: AnonymizeReport, records: list) -> None:
        if not batch:
            return
        frames = [photo.rgb for _, _, photo in batch]
        faces = [self.pipeline.find(frame) for frame in frames]
        slots = [[self.next_slot(planner) for _ in found] for found in faces]
        results = self.pipeline.process(frames, faces, slots)
        for (path, target, photo), face_records in zip(batch, results, strict=True):
            height, width = photo.rgb.shape[:2]
            record: dict[str, Any] = {
                "input": str(path),
                "kind": "photo",
                "size": [width, height],
                "exif_rotated": photo.rotated,
            }
            write = partial(write_photo, photo, photo.rgb, target)
            self._finish_photo(path, target, out, record, face_records, write, report, records)
        batch.clear()

    def _finish_photo(self, path, target, out, record, face_records, write, report, records) -> None:
        """Write one photo (``write()``), or copy/skip it when it has no face; record and count."""
        if not face_records:
            notice = f"{path}: no face found"
            if self.skip_no_face:
                record["output"] = None
                record["notice"] = "no face found; left out (--skip-no-face)"
                report.notices.append(f"{notice}; left out (--skip-no-face)")
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                record["output"] = target.relative_to(out).as_posix()
                record["notice"] = "no face found; copied unchanged"
                report.notices.append(f"{notice}; copied unchanged")
                report.outputs.append(target)
        else:
            write()
            record["output"] = target.relative_to(out).as_posix()
            report.outputs.append(target)
        record["faces"] = [face.to_json() for face in face_records]
        self._count(face_records, report, path)
        report.done.append(path)
        records.append(record)

    def _large_photo(self, path: Path, target: Path, out: Path, planner, report, records) -> None:
        """A photo above the region threshold: found, replaced and written in pieces (see
        :mod:`privlens.anonymize.regions`); faces are found on a copy of ``detect_side`` px."""
        photo = LargePhoto(path)
        faces = regions.find_faces(photo, self.pipeline)
        slots = [self.next_slot(planner) for _ in faces]
        face_records, patches = regions.process(self.pipeline, photo, faces, slots)
        record: dict[str, Any] = {
            "input": str(path),
            "kind": "photo",
            "size": [photo.width, photo.height],
            "exif_rotated": photo.orientation != 1,
            "processed": "in regions (large photo): faces found on a reduced copy, replaced at full size",
        }
        write = partial(photo.write, target, patches)
        self._finish_photo(path, target, out, record, face_records, write, report, records)

    def _count(self, face_records, report: AnonymizeReport, path: Path) -> None:
        for face in face_records:
            if face.action == PIXELATED:
                report.pixelated += 1
            else:
                report.replaced += 1

    def _video(
        self, path: Path, out: Path, name: Path, planner, report: AnonymizeReport, records: list
    ) -> None:
        """One clip, streamed in chunks of frames; one style per track."""
        target = out / name
        try:
            info = video_info(path)
        except ImageFileError as error:
            report.skipped.append((path, str(error)))
            return
        if not info.fps_known:
            report.notices.append(f"{path}: frame rate unknown, writing {info.fps:g} fps")
        stream = FrameStream(
            self.pipeline, lambda: self.next_slot(planner), self.detect_every, self.smoothing
        )
        sink = FrameSink(target, info.fps, info.width, info.height)
        chunk: list = []
        try:
            for frame in iter_frames(path):
                chunk.append(frame)
                if len(chunk) == self.batch_size:
                    self._write_chunk(stream, chunk, sink)
            self._write_chunk(stream, chunk, sink)
        except BaseException:
            sink.abort()
            raise
        count = sink.frames
        sink.finish()
        audio = mux_audio(target, path)
        if not audio:
            report.notices.append(f"{path}: audio (if any) dropped: ffmpeg is not installed")
        tracks = [summary.to_json() for summary in stream.summaries.values()]
        report.replaced += sum(t["replaced"] for t in tracks)
        report.pixelated += sum(t["pixelated"] for t in tracks) + stream.untracked
        report.outputs.append(target)
        report.done.append(path)
        records.append(
            {
                "input": str(path),
                "kind": "video",
                "output": target.relative_to(out).as_posix(),
                "size": [info.width, info.height],
                "fps": info.fps,
                "frames": count,
                "audio": "kept" if audio else "dropped",
                "tracks": tracks,
                "untracked_faces_pixelated": stream.untracked,
            }
        )

    def _write_chunk(self, stream: FrameStream, chunk: list, sink: FrameSink) -> None:
        if not chunk:
            return
        stream.push(chunk)
        for frame in chunk:
            sink.write(frame)
        chunk.clear()
