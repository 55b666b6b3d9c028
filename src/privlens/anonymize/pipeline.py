"""The anonymisation pipeline: scene x -> camera -> capture y -> U(y) -> new face(s).

Two backends paint the new faces:

* ``warp`` (training-free): U's landmark heatmaps -> 68 landmarks (windowed soft-argmax) -> a
  reference face warped onto that geometry (:mod:`privlens.anonymize.warp`).
* ``gan``: the Stage II generator, ``G(y, U(y), s)`` with the style ``s = S(reference, domain)``
  from the style encoder, or ``s = F(z, domain)`` from the mapping network for a random latent
  ``z``. A ``content="warp"`` generator reads the reference warped onto U's landmarks instead of
  ``y`` (:class:`privlens.nets.stargan.Generator`) and needs references.

The raw scene enters :meth:`Anonymizer.run` and leaves it only as the capture: nothing downstream
of the camera sees it. Images are float RGB ``[B, 3, S, S]`` in [0, 1] throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from privlens.anonymize.choice import resolve_far_slots
from privlens.anonymize.references import Reference, Slot
from privlens.anonymize.warp import warp_reference
from privlens.faces.heatmaps import heatmap_to_image_coords
from privlens.nets import HeatmapNet, reads_warps, soft_argmax
from privlens.optics.camera import Camera

NUM_LANDMARKS = 68


class AnonymizeError(ValueError):
    """A user error in an anonymisation job (files, sizes, options that do not fit together)."""


def heatmap_landmarks(
    heatmaps: torch.Tensor, image_size: int, num_landmarks: int = NUM_LANDMARKS
) -> torch.Tensor:
    """``[B, K, h, w]`` U output -> ``[B, num_landmarks, 2]`` (x, y) image pixels (soft-argmax on
    the landmark channels, a window of 2 heatmap pixels around each peak)."""
    uv = soft_argmax(heatmaps[:, :num_landmarks].float())
    return heatmap_to_image_coords(uv, image_size, tuple(heatmaps.shape[-2:]))


def heatmap_image(
    heatmaps: torch.Tensor, landmarks: torch.Tensor | None, size: int, num_landmarks: int = NUM_LANDMARKS
) -> torch.Tensor:
    """A picture of one U output ``[K, h, w]``: the maximum over the landmark channels, clamped to
    [0, 1] (the range of the Gaussian targets U learns), colour-mapped (inferno) and resized to
    ``size``, with the decoded landmarks (``[68, 2]`` image pixels) as cyan dots. ``[3, S, S]``."""
    import cv2

    peak = heatmaps[:num_landmarks].float().amax(0).clamp(0, 1).cpu().numpy()
    grey = cv2.resize((peak * 255).round().astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)
    picture = cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO)[..., ::-1].copy()  # BGR -> RGB
    if landmarks is not None:
        radius = max(1, size // 128)
        for x, y in landmarks.detach().cpu().numpy():
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(picture, (int(round(x)), int(round(y))), radius, (0, 255, 255), -1)
    return torch.from_numpy(picture.transpose(2, 0, 1).astype(np.float32) / 255.0)


class Backend(Protocol):
    name: str

    def generate(
        self, captures: torch.Tensor, heatmaps: torch.Tensor, landmarks: torch.Tensor, plans: list[list[Slot]]
    ) -> torch.Tensor:
        """``[B, N, 3, S, S]`` new faces, ``plans[b][k]`` saying where face ``k`` of input ``b``
        takes its style."""
        ...


class WarpBackend:
    """Training-free backend: each reference face warped onto the landmarks U found."""

    name = "warp"

    def __init__(self, references: list[Reference]) -> None:
        self.references = references

    def generate(
        self, captures: torch.Tensor, heatmaps: torch.Tensor, landmarks: torch.Tensor, plans: list[list[Slot]]
    ) -> torch.Tensor:
        size = captures.shape[-1]
        faces = []
        for target, slots in zip(landmarks.cpu(), plans, strict=True):
            resolve_far_slots(self.references, target, slots, size)
            row = []
            for slot in slots:
                if slot.reference is None:
                    raise AnonymizeError("the warp backend needs reference faces (no --latent)")
                reference = self.references[slot.reference]
                row.append(warp_reference(reference.image, reference.landmarks, target, size))
            faces.append(torch.stack(row))
        return torch.stack(faces).to(captures.device)


class GanBackend:
    """The Stage II generator: ``G(y, U(y), s)``, styles from references (S) or latents (F).

    ``bundle`` is a :class:`privlens.train.GeneratorBundle` (generator, style_encoder, mapping,
    domains, image_size, latent_dim, ...). Reference styles are computed once per reference.
    """

    name = "gan"

    def __init__(self, bundle, references: list[Reference], device: torch.device | str = "cpu") -> None:
        self.bundle, self.references, self.device = bundle, references, torch.device(device)
        for module in (bundle.generator, bundle.style_encoder, bundle.mapping):
            module.to(self.device).eval()
        self._styles: dict[tuple[int, int], torch.Tensor] = {}

    def _style(self, slot: Slot) -> torch.Tensor:
        domain = torch.tensor([slot.domain if slot.domain is not None else 0], device=self.device)
        if slot.latent is not None:
            return self.bundle.mapping(slot.latent[None].to(self.device), domain)[0]
        key = (slot.reference, int(domain))
        if key not in self._styles:
            image = self.references[slot.reference].image[None].to(self.device)
            self._styles[key] = self.bundle.style_encoder(image, domain)[0]
        return self._styles[key]

    def _warped(self, landmarks: torch.Tensor, plans: list[list[Slot]], size: int) -> torch.Tensor:
        """``[B * N, 3, S, S]``: each slot's reference warped onto its input's landmarks (the content
        of a ``content="warp"`` generator); a latent slot has no reference and is refused."""
        warped = []
        for target, slots in zip(landmarks.cpu(), plans, strict=True):
            for slot in slots:
                if slot.reference is None:
                    raise AnonymizeError(
                        "this generator paints from a warped reference face (content 'warp'); "
                        "it needs references, not --latent"
                    )
                reference = self.references[slot.reference]
                warped.append(warp_reference(reference.image, reference.landmarks, target, size))
        return torch.stack(warped)

    def generate(
        self, captures: torch.Tensor, heatmaps: torch.Tensor, landmarks: torch.Tensor, plans: list[list[Slot]]
    ) -> torch.Tensor:
        count = len(plans[0])
        if any(len(slots) != count for slots in plans):
            raise ValueError("every input of a batch needs the same number of slots")
        for target, slots in zip(landmarks.cpu(), plans, strict=True):
            resolve_far_slots(self.references, target, slots, captures.shape[-1])
        styles = torch.stack([self._style(slot) for slots in plans for slot in slots])
        if reads_warps(self.bundle.generator):  # each slot's reference warped onto U's landmarks
            content = self._warped(landmarks, plans, captures.shape[-1]).to(self.device)
        else:
            content = captures.repeat_interleave(count, dim=0)
        images = self.bundle.generator(content, heatmaps.repeat_interleave(count, dim=0), styles)
        return images.unflatten(0, (len(plans), count))


@dataclass
class AnonymizedBatch:
    """One batch's outputs: captures ``[B, 3, S, S]``, U's heatmaps ``[B, K, S/4, S/4]``, the
    decoded landmarks ``[B, 68, 2]`` (image pixels) and the new faces ``[B, N, 3, S, S]``."""

    captures: torch.Tensor
    heatmaps: torch.Tensor
    landmarks: torch.Tensor
    faces: torch.Tensor


class Anonymizer:
    """Camera, U and a backend, on one device, in evaluation mode.

    ``image_size`` is the camera's; it must be a multiple of U's input multiple. With
    ``sensor_noise`` (the default) every capture is what the sensor stores
    (:meth:`privlens.optics.camera.Camera.readout`: shot and read noise at the lens file's
    ``full_scale_e`` and ``read_noise_e``, clipping, ``bit_depth`` quantisation), drawn from a
    generator seeded with ``seed``, so a run is repeatable; ``sensor_noise=False`` gives the
    noise-free optical image (the lens alone).
    """

    def __init__(
        self,
        camera: Camera,
        heatmap_net: HeatmapNet,
        backend: Backend,
        device: torch.device | str = "cpu",
        sensor_noise: bool = True,
        seed: int = 0,
    ) -> None:
        self.device = torch.device(device)
        self.sensor_noise = sensor_noise
        self.noise_rng = torch.Generator(device=self.device).manual_seed(seed)
        self.camera = camera.to(self.device).eval()
        self.heatmap_net = heatmap_net.to(self.device).eval()
        self.backend = backend
        self.image_size = camera.config.image_size
        if self.image_size % heatmap_net.multiple:
            raise AnonymizeError(
                f"image size {self.image_size} must be a multiple of {heatmap_net.multiple} for this "
                f"heatmap network (hourglass depth {heatmap_net.depth}); pick another --size"
            )
        if heatmap_net.num_landmarks != NUM_LANDMARKS:
            raise AnonymizeError(
                f"the heatmap network predicts {heatmap_net.num_landmarks} landmarks; anonymisation "
                f"needs dlib's {NUM_LANDMARKS}"
            )
        with torch.no_grad():
            self.psf = self.camera.psf()

    @torch.no_grad()
    def run(self, scenes: torch.Tensor, plans: list[list[Slot]]) -> AnonymizedBatch:
        """Anonymise ``scenes`` ``[B, 3, S, S]`` with one plan (list of slots) per scene."""
        if len(plans) != scenes.shape[0]:
            raise ValueError(f"{scenes.shape[0]} scenes but {len(plans)} plans")
        captures = self.camera.image(scenes.to(self.device), self.psf)
        if self.sensor_noise:
            captures = self.camera.readout(captures, generator=self.noise_rng)
        heatmaps = self.heatmap_net(captures)
        landmarks = heatmap_landmarks(heatmaps, self.image_size)
        faces = self.backend.generate(captures, heatmaps, landmarks, plans)
        return AnonymizedBatch(captures, heatmaps, landmarks, faces)
