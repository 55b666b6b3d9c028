"""Very large photos, anonymised region by region at full resolution without holding them whole.

A photo above :data:`REGION_PIXELS` pixels (when libvips is available, see
:mod:`privlens.data.large`) never exists whole in memory:

1. faces are detected on a reduced copy (longer side ``detect_side``, as for every photo), the
   boxes mapped back to photo pixels;
2. dlib's 68 landmarks are found in a full-resolution window around each box;
3. each face's *work region* (what the alignment reads, what the paste or the fail-safe may
   change, plus a margin; overlapping regions merged) is read at full resolution, and the
   ordinary :class:`~privlens.anonymize.frames.FramePipeline` runs on these regions as if they
   were frames, blending in bands of rows (:mod:`privlens.anonymize.blend`);
4. the photo is written by streaming it through with the changed rectangles inserted.

Given the same faces, the result equals the whole-frame pipeline's up to rounding (blending in
bands: at most one level in a few pixels); pixels outside the face regions keep their exact
values. Detection uses libvips' reduced copy instead of OpenCV's, so boxes can differ by about a
pixel of the reduced copy. Memory follows the face regions, not the photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from privlens.anonymize.blend import Region
from privlens.anonymize.frames import PIXELATED, FaceRecord, FoundFace, FramePipeline, points
from privlens.anonymize.references import Slot
from privlens.data.images import image_size
from privlens.data.large import SAVERS, LargePhoto, Patch, available, release_memory, unavailable_reason
from privlens.faces.align import ffhq_quad
from privlens.faces.detect import detect_faces

REGION_PIXELS = 40_000_000
"""Photos with more pixels than this are processed region by region (a 40 MP RGB frame is
120 MB; the whole-frame pipeline holds it several times over)."""
DETECT_SIDE = 960
"""Longer side of the detection copy when the finder sets none (pixels)."""
LANDMARK_MARGIN = 0.5
"""The landmark window: the box grown by this fraction of its larger side on every side."""
LANDMARK_BOX_PX = 512
"""Landmarks of a face whose box is wider than this are found on a window shrunk by an integer
factor to about this width (dlib's 68 points gain nothing from a 2400 px face; memory does)."""
MARGIN = 8
"""Pixels added around each work region (bilinear taps, rounding of the footprints)."""
BAND_ROWS = 64
"""Rows per band when a face region is blended (see :mod:`privlens.anonymize.blend`)."""
CHUNK_PIXELS = 24_000_000
"""Work regions are read and processed in chunks of about this many pixels (72 MB of RGB)."""


def plan(path: str | Path) -> tuple[bool, str | None]:
    """Whether the image file at ``path`` goes through this module (above :data:`REGION_PIXELS`,
    libvips available, an output format it writes), and a notice when a photo above the threshold
    must be processed whole instead. Header only; raises
    :class:`~privlens.data.images.ImageFileError` for an unreadable file or one above the pixel
    limit."""
    width, height = image_size(path)
    if width * height <= REGION_PIXELS:
        return False, None
    if not available():
        reason = f"libvips is unavailable ({unavailable_reason()})"
    elif Path(path).suffix.lower() not in SAVERS:
        reason = f"libvips does not write {Path(path).suffix} files"
    else:
        return True, None
    return False, f"{path}: {width} x {height} px processed whole ({reason}): memory grows with it"


def use_regions(path: str | Path) -> bool:
    """Whether the image file at ``path`` goes through this module (see :func:`plan`)."""
    return plan(path)[0]


def _clip(box: Sequence[float], width: int, height: int) -> Region:
    x0, y0, x1, y1 = box
    return (
        max(0, int(np.floor(x0))),
        max(0, int(np.floor(y0))),
        min(width, int(np.ceil(x1))),
        min(height, int(np.ceil(y1))),
    )


def find_faces(photo: LargePhoto, pipeline: FramePipeline) -> list[FoundFace]:
    """Faces (boxes and 68 landmarks in photo pixels) of a large photo, best score first: detected
    on a reduced copy, landmarks in a full-resolution window around each box."""
    finder = pipeline.finder
    small, scale_x, scale_y = photo.reduced(finder.detect_side or DETECT_SIDE)
    release_memory()  # what libvips freed after shrinking the whole photo
    found = []
    for face in detect_faces(small, finder.detector):
        x0, y0, x1, y1 = face.box
        box = ((x0 + 0.5) * scale_x - 0.5, (y0 + 0.5) * scale_y - 0.5)
        box += ((x1 + 0.5) * scale_x - 0.5, (y1 + 0.5) * scale_y - 0.5)
        if box[2] - box[0] < finder.min_face:
            continue
        grow = LANDMARK_MARGIN * max(box[2] - box[0], box[3] - box[1])
        grown = (box[0] - grow, box[1] - grow, box[2] + grow, box[3] + grow)
        window = _clip(grown, photo.width, photo.height)
        if window[2] <= window[0] or window[3] <= window[1]:
            found.append(FoundFace(box, face.score, None))
            continue
        found.append(FoundFace(box, face.score, _landmarks(photo, box, window)))
    release_memory()
    return found


def _landmarks(photo: LargePhoto, box, window: Region) -> np.ndarray | None:
    """dlib's 68 points (photo pixels) of the face in ``box``, found in ``window`` (shrunk by an
    integer factor for a face wider than :data:`LANDMARK_BOX_PX`)."""
    shrink = max(1, int((box[2] - box[0]) // LANDMARK_BOX_PX))
    dx, dy = window[0], window[1]
    local = (box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy)
    if shrink > 1:  # pixel centres: x_small = (x + 0.5) / shrink - 0.5
        local = tuple((v + 0.5) / shrink - 0.5 for v in local)
    found = points(photo.region(window, shrink), local)
    if found is None:
        return None
    if shrink > 1:
        found = (found + 0.5) * shrink - 0.5
    return found + np.array([dx, dy], dtype=np.float64)


def work_region(face: FoundFace, width: int, height: int) -> Region | None:
    """The photo rectangle that processing ``face`` reads or may change: the FFHQ crop square of
    its landmarks (alignment, paste, pixelation) and the grown box of the fail-safe, plus
    :data:`MARGIN`; ``None`` when it lies outside the photo."""
    x0, y0, x1, y1 = face.box
    grow_x, grow_y = (x1 - x0) * 0.25, (y1 - y0) * 0.25  # blend.pixelate_box's margin
    boxes = [(x0 - grow_x, y0 - grow_y, x1 + grow_x, y1 + grow_y)]
    if face.landmarks is not None:
        quad = ffhq_quad(face.landmarks)
        boxes.append((*quad.min(0), *quad.max(0)))
    lows = np.min([b[:2] for b in boxes], axis=0) - MARGIN
    highs = np.max([b[2:] for b in boxes], axis=0) + MARGIN + 1
    region = _clip((*lows, *highs), width, height)
    return region if region[2] > region[0] and region[3] > region[1] else None


def _touch(a: Region, b: Region) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def merge_regions(regions: list[Region]) -> list[tuple[Region, list[int]]]:
    """Overlapping rectangles merged (until none overlap): ``(rectangle, indices of its members)``,
    the members in their original order."""
    groups = [(region, [i]) for i, region in enumerate(regions)]
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if _touch(groups[a][0], groups[b][0]):
                    (ra, ia), (rb, ib) = groups[a], groups[b]
                    union = (min(ra[0], rb[0]), min(ra[1], rb[1]), max(ra[2], rb[2]), max(ra[3], rb[3]))
                    groups[a] = (union, sorted(ia + ib))
                    del groups[b]
                    merged = True
                    break
            if merged:
                break
    return sorted(groups, key=lambda group: group[1][0])


def _shift(face: FoundFace, dx: float, dy: float) -> FoundFace:
    x0, y0, x1, y1 = face.box
    landmarks = None if face.landmarks is None else face.landmarks - np.array([dx, dy])
    return replace(face, box=(x0 - dx, y0 - dy, x1 - dx, y1 - dy), landmarks=landmarks)


def process(
    pipeline: FramePipeline,
    photo: LargePhoto,
    faces: list[FoundFace],
    slots: list[Slot | None],
) -> tuple[list[FaceRecord], list[Patch]]:
    """Replace ``faces`` (from :func:`find_faces`) in their work regions: one record per face (in
    order; boxes and regions in photo pixels) and the changed rectangles to write back."""
    records: list[FaceRecord | None] = [None] * len(faces)
    regions = [work_region(face, photo.width, photo.height) for face in faces]
    inside = [i for i, region in enumerate(regions) if region is not None]
    groups = merge_regions([regions[i] for i in inside])
    groups = [(region, [inside[k] for k in members]) for region, members in groups]
    patches: list[Patch] = []
    band_rows, pipeline.band_rows = pipeline.band_rows, BAND_ROWS
    try:
        start = 0
        while start < len(groups):
            chunk, pixels = [], 0
            while start < len(groups) and (not chunk or pixels < CHUNK_PIXELS):
                region = groups[start][0]
                pixels += (region[2] - region[0]) * (region[3] - region[1])
                chunk.append(groups[start])
                start += 1
            patches += _process_chunk(pipeline, photo, faces, slots, chunk, records)
    finally:
        pipeline.band_rows = band_rows
    for i, record in enumerate(records):
        if record is None:  # the work region lies outside the photo: nothing to change
            reason = "the face lies outside the frame"
            records[i] = FaceRecord(faces[i].box, faces[i].score, PIXELATED, reason)
    return [record for record in records if record is not None], patches


def _process_chunk(pipeline, photo: LargePhoto, faces, slots, chunk, records) -> list[Patch]:
    crops = [photo.region(region) for region, _ in chunk]
    local = [[_shift(faces[i], region[0], region[1]) for i in members] for region, members in chunk]
    chosen = [[slots[i] for i in members] for _, members in chunk]
    results = pipeline.process(crops, local, chosen)
    patches = []
    for (region, members), crop, found in zip(chunk, crops, results, strict=True):
        x, y = region[:2]
        changed = False
        for i, record in zip(members, found, strict=True):
            record.box = faces[i].box
            if record.region is not None:
                rx0, ry0, rx1, ry1 = record.region
                record.region = (rx0 + x, ry0 + y, rx1 + x, ry1 + y)
                changed = True
            records[i] = record
        if changed is not None:  # the whole crop (its other pixels are the photo's own): no copy
            patches.append(Patch(x, y, crop))
    release_memory()
    return patches
