"""Reference faces (whose identity the new faces borrow) and the seeded choice of styles per input.

A reference is an image file, centre-cropped to a square like every input. Its 68 landmarks come
from dlib (HOG detector), found on the square at its own size (at most 512 px; from 128 px), or
else resized to 256 px, whatever the pipeline's size (dlib misses faces in small images), then
rescaled to the pipeline's pixels. A
reference in which no face is found is skipped with the reason, never fatal.

A :class:`Slot` says where one output face takes its style from: a reference (index into the
reference list) or, with a GAN, a random latent code through the mapping network; plus the
domain (GAN only). :class:`StylePlanner` draws ``num_refs`` slots per input from a seeded
generator, in input order, so a run with the same inputs and seed makes the same choices; a video
draws once for the whole clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from privlens.data.images import ImageFileError, list_images, load_image, square_resize

DETECTION_MIN_PX = 256
DETECTION_SMALLEST_PX = 128
DETECTION_MAX_PX = 512


@dataclass
class Reference:
    """One usable reference: the square image at the pipeline's size (``[3, S, S]`` in [0, 1]),
    its ``[68, 2]`` dlib landmarks in those pixels, and the domain its folder names (if any)."""

    path: Path
    image: torch.Tensor
    landmarks: np.ndarray
    folder: str


def stack_references(references: list[Reference]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [R, 3, S, S], landmarks [R, 68, 2] float32 pixels)`` of a list of references."""
    images = torch.stack([reference.image for reference in references])
    points = torch.stack([torch.as_tensor(r.landmarks, dtype=torch.float32) for r in references])
    return images, points


@dataclass
class ReferenceSet:
    references: list[Reference] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def rescale_points(points: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """(x, y) pixel coordinates (origin at the top-left pixel's centre) of a square image resized
    from ``from_size`` to ``to_size``."""
    return (np.asarray(points, np.float64) + 0.5) * (to_size / from_size) - 0.5


def prepare_reference(path: Path, image: torch.Tensor, size: int) -> Reference | str:
    """A :class:`Reference` from a loaded image, or the reason it cannot be one."""
    from privlens.faces import face_landmarks

    side = int(min(image.shape[-2:]))
    # the square at its own size (at most DETECTION_MAX_PX), then at DETECTION_MIN_PX if missed
    sizes = [min(side, DETECTION_MAX_PX)] if side >= DETECTION_SMALLEST_PX else []
    sizes += [DETECTION_MIN_PX] if DETECTION_MIN_PX not in sizes else []
    for detection_px in sizes:
        found = face_landmarks(square_resize(image, detection_px))
        if found is not None:
            break
    else:
        return "no face found (dlib HOG)"
    _, points = found
    return Reference(
        path, square_resize(image, size), rescale_points(points, detection_px, size), path.parent.name
    )


def load_references(source: str | Path, size: int) -> ReferenceSet:
    """Every image of ``source`` (a file or a folder) that holds a face, at ``size`` x ``size``.

    Unreadable files and face-less images are listed in ``skipped`` with the reason.
    Raises :class:`ImageFileError` when ``source`` is missing or holds no image at all.
    """
    result = ReferenceSet()
    for path in list_images(source):
        try:
            image = load_image(path)
        except ImageFileError as error:
            result.skipped.append((path, str(error)))
            continue
        reference = prepare_reference(path, image, size)
        if isinstance(reference, str):
            result.skipped.append((path, reference))
        else:
            result.references.append(reference)
    return result


@dataclass
class Slot:
    """Where one output face takes its style: ``reference`` (an index) or ``latent``
    (``[latent_dim]``), and ``domain`` (index into the generator's domains; ``None`` for warp).

    ``far``: the reference is not drawn yet; the backend chooses it the first time it sees
    the face's geometry (:func:`privlens.anonymize.choice.far_references`) and writes it into
    ``reference``, so a video track that keeps its slot keeps that reference.
    """

    reference: int | None = None
    latent: torch.Tensor | None = None
    domain: int | None = None
    far: bool = False


class StylePlanner:
    """Seeded choice of ``num_refs`` style slots per input.

    Args:
        num_refs: output faces per input.
        seed: seed of the choices.
        num_references: usable references (reference mode; ``num_refs`` distinct ones are drawn).
        latent_dim: with a value, latent mode: each slot gets a standard normal latent code.
        domains: the generator's domain names (``None`` for warp).
        domain: force this domain; otherwise a reference uses the domain its folder names (when
            it is one of ``domains``), and anything else gets a seeded random domain.
        reference_folders: folder name of every reference (for the domain rule above).
        reference_choice: ``seeded`` (draw the references) or ``far`` (leave them to the
            backend's identity-aware choice on the face's geometry, :mod:`privlens.anonymize.choice`;
            a GAN's domain is then ``domain`` or a seeded random one).
    """

    def __init__(
        self,
        num_refs: int,
        seed: int,
        num_references: int = 0,
        latent_dim: int | None = None,
        domains: list[str] | None = None,
        domain: str | None = None,
        reference_folders: list[str] | None = None,
        reference_choice: str = "seeded",
    ) -> None:
        from privlens.anonymize.choice import REFERENCE_CHOICES

        if reference_choice not in REFERENCE_CHOICES:
            raise ValueError(
                f"--reference-choice must be one of {', '.join(REFERENCE_CHOICES)}, got {reference_choice!r}"
            )
        if reference_choice == "far" and latent_dim is not None:
            raise ValueError("--reference-choice far chooses references; it cannot go with --latent")
        if num_refs < 1:
            raise ValueError(f"--num-refs must be at least 1, got {num_refs}")
        if latent_dim is None and num_refs > num_references:
            raise ValueError(
                f"asked for {num_refs} reference(s) per input but only {num_references} usable "
                "reference face(s) were found"
            )
        if domain is not None and (domains is None or domain not in domains):
            known = ", ".join(domains) if domains else "none (the warp backend has no domains)"
            raise ValueError(f"unknown domain {domain!r}; this generator's domains: {known}")
        self.num_refs, self.num_references, self.latent_dim = num_refs, num_references, latent_dim
        self.domains, self.domain = domains, domain
        self.folders = reference_folders or []
        self.far = reference_choice == "far"
        self.rng = np.random.default_rng(seed)
        self.torch_rng = torch.Generator().manual_seed(seed)

    def _domain(self, reference: int | None) -> int | None:
        if self.domains is None:
            return None
        if self.domain is not None:
            return self.domains.index(self.domain)
        if (
            reference is not None
            and reference < len(self.folders)
            and self.folders[reference] in self.domains
        ):
            return self.domains.index(self.folders[reference])
        return int(self.rng.integers(len(self.domains)))

    def next(self) -> list[Slot]:
        """The slots of the next input."""
        if self.latent_dim is not None:
            return [
                Slot(
                    latent=torch.randn(self.latent_dim, generator=self.torch_rng),
                    domain=self._domain(None),
                )
                for _ in range(self.num_refs)
            ]
        if self.far:
            return [Slot(far=True, domain=self._domain(None)) for _ in range(self.num_refs)]
        chosen = self.rng.choice(self.num_references, size=self.num_refs, replace=False)
        return [Slot(reference=int(i), domain=self._domain(int(i))) for i in chosen]
