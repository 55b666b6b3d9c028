"""The pipeline camera -> U -> landmarks -> backend, reference loading and the seeded style plans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from privlens.anonymize.pipeline import (
    AnonymizeError,
    Anonymizer,
    WarpBackend,
    heatmap_image,
    heatmap_landmarks,
)
from privlens.anonymize.references import Reference, Slot, StylePlanner, load_references
from privlens.faces.heatmaps import render_heatmaps
from privlens.nets import HeatmapNet
from privlens.optics import make_camera


class OracleU(nn.Module):
    """Stands in for a perfect U: returns the heatmaps of fixed landmarks, whatever the capture,
    and records what it was given."""

    multiple, depth, num_landmarks = 16, 2, 68

    def __init__(self, landmarks: np.ndarray, image_size: int) -> None:
        super().__init__()
        maps = render_heatmaps(torch.as_tensor(landmarks, dtype=torch.float32), image_size, image_size // 4)
        self.register_buffer("maps", torch.cat([maps, torch.zeros(2, *maps.shape[-2:])]))
        self.seen: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append(images.clone())
        return self.maps.expand(images.shape[0], -1, -1, -1)


def test_heatmap_landmarks_recover_rendered_points():
    points = torch.tensor(np.random.default_rng(0).uniform(20, 230, (2, 68, 2)), dtype=torch.float32)
    maps = render_heatmaps(points, 256, 64)
    decoded = heatmap_landmarks(torch.cat([maps, torch.zeros(2, 2, 64, 64)], 1), 256)
    assert (decoded - points).abs().max() < 0.5  # 0.125 heatmap px


def test_warp_pipeline_puts_the_reference_face_on_the_geometry_u_reports():
    """Oracle U reporting a moved geometry: the new face's dlib landmarks land within 2 px of it,
    and U saw the capture, not the scene."""
    from privlens.data.samples import astronaut
    from privlens.faces import detect_faces, face_landmarks, landmarks68

    photo = astronaut(256)
    reference_points = face_landmarks(photo)[1]
    target = reference_points * 0.9 + np.array([20.0, 12.0])  # smaller, moved
    oracle = OracleU(target, 256)
    camera = make_camera("defocus", 256)
    anonymizer = Anonymizer(
        camera, oracle, WarpBackend([Reference(Path("astronaut"), photo, reference_points, "")])
    )
    scene = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    result = anonymizer.run(scene, [[Slot(reference=0)]])
    assert result.faces.shape == (1, 1, 3, 256, 256)
    assert result.captures.shape == scene.shape
    # U sees the capture as the sensor stores it (seeded noise, quantised), not the scene
    with torch.no_grad():
        stored = camera.capture(scene, generator=torch.Generator().manual_seed(0)).image
    assert torch.allclose(oracle.seen[0], stored, atol=1e-6)
    assert not torch.allclose(stored, camera(scene).image, atol=1e-4)
    levels = oracle.seen[0] * (2**camera.config.bit_depth - 1)
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    quiet = Anonymizer(camera, oracle, anonymizer.backend, sensor_noise=False)
    quiet.run(scene, [[Slot(reference=0)]])
    assert torch.allclose(oracle.seen[-1], camera(scene).image, atol=1e-6)
    assert (result.captures - scene).abs().mean() > 0.05
    assert np.abs(result.landmarks[0].numpy() - target).max() < 0.5
    face = result.faces[0, 0]
    boxes = [f for f in detect_faces(face) if f.box[0] <= target[30, 0] <= f.box[2]]
    assert boxes
    error = np.linalg.norm(landmarks68(face, boxes[0]) - target, axis=1).mean()
    assert error < 2.0, error


def test_size_must_fit_u_and_u_must_have_68_landmarks():
    with pytest.raises(AnonymizeError, match="multiple of 16"):
        Anonymizer(make_camera("open", 40), HeatmapNet(width=8, depth=2), WarpBackend([]))
    with pytest.raises(AnonymizeError, match="68"):
        Anonymizer(make_camera("open", 32), HeatmapNet(num_landmarks=5, width=8, depth=1), WarpBackend([]))


def test_heatmap_picture():
    maps = render_heatmaps(torch.tensor([[[10.0, 20.0]] * 68]), 64, 16)[0]
    picture = heatmap_image(torch.cat([maps, torch.zeros(2, 16, 16)]), torch.tensor([[10.0, 20.0]] * 68), 64)
    assert picture.shape == (3, 64, 64) and picture.min() >= 0 and picture.max() <= 1
    assert picture[:, 20, 10].sum() > picture[:, 60, 60].sum()  # bright at the landmark


def test_references_skip_faceless_and_broken_files(references, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    found = load_references(references, 64)
    assert len(found.references) == 5
    assert [p.name for p, _ in found.skipped] == ["zz_no_face.png"]
    assert "no face" in found.skipped[0][1]
    ref = found.references[0]
    assert ref.image.shape == (3, 64, 64) and ref.landmarks.shape == (68, 2)
    assert (ref.landmarks > 0).all() and (ref.landmarks < 64).all()
    broken = load_references(tmp_path, 64)
    assert not broken.references and "not a readable image" in broken.skipped[0][1]


def test_style_plans_are_seeded_distinct_and_checked():
    plans = [StylePlanner(3, seed=7, num_references=5).next() for _ in range(2)]
    assert [s.reference for s in plans[0]] == [s.reference for s in plans[1]]
    planner = StylePlanner(3, seed=7, num_references=5)
    draws = [[s.reference for s in planner.next()] for _ in range(20)]
    assert all(len(set(d)) == 3 for d in draws)  # distinct references per input
    assert len({tuple(d) for d in draws}) > 5  # inputs get different references
    with pytest.raises(ValueError, match="only 2 usable"):
        StylePlanner(3, 0, num_references=2)
    with pytest.raises(ValueError, match="unknown domain"):
        StylePlanner(1, 0, num_references=1, domains=["female", "male"], domain="cat")
    by_folder = StylePlanner(
        2, 0, num_references=2, domains=["female", "male"], reference_folders=["male", "x"]
    )
    slots = by_folder.next()
    assert {s.reference: s.domain for s in slots}[0] == 1  # the folder names the domain
    latent = StylePlanner(2, 3, latent_dim=16, domains=["a", "b"]).next()
    again = StylePlanner(2, 3, latent_dim=16, domains=["a", "b"]).next()
    assert latent[0].latent.shape == (16,)
    assert torch.equal(latent[1].latent, again[1].latent) and not torch.equal(
        latent[0].latent, latent[1].latent
    )


def test_warp_content_generator_never_reads_the_capture(references):
    """A ``content="warp"`` generator paints from each slot's reference warped onto U's
    landmarks: two different captures with the same heatmaps give the same faces (a capture-content
    generator's differ), the reference changes them, and a latent slot is refused."""
    from types import SimpleNamespace

    from privlens.anonymize.pipeline import GanBackend
    from privlens.nets import Generator, MappingNetwork, StyleEncoder

    found = load_references(references, 64).references[:2]
    target = torch.as_tensor(found[0].landmarks, dtype=torch.float32)
    maps = render_heatmaps(target, 64, 16)
    heatmaps = torch.cat([maps, torch.full((2, 16, 16), 0.5)])[None].expand(2, -1, -1, -1)
    captures = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    landmarks = target[None].expand(2, -1, -1)
    plans = [[Slot(reference=0)], [Slot(reference=0)]]

    def backend(content: str) -> GanBackend:
        torch.manual_seed(0)
        bundle = SimpleNamespace(
            generator=Generator(64, 64, 8, 32, content=content),
            style_encoder=StyleEncoder(64, 64, 1, 8, 32),
            mapping=MappingNetwork(16, 64, 1, 32),
        )
        return GanBackend(bundle, found)

    with torch.no_grad():
        warped = backend("warp").generate(captures, heatmaps, landmarks, plans)
        assert torch.equal(warped[0], warped[1])
        direct = backend("capture").generate(captures, heatmaps, landmarks, plans)
        assert (direct[0] - direct[1]).abs().mean() > 1e-3
        other = backend("warp").generate(captures, heatmaps, landmarks, [[Slot(reference=1)]] * 2)
        assert (other - warped).abs().mean() > 1e-3
        with pytest.raises(AnonymizeError, match="not --latent"):
            backend("warp").generate(captures, heatmaps, landmarks, [[Slot(latent=torch.zeros(16))]] * 2)
    with pytest.raises(ValueError, match="content must be one of capture, warp"):
        Generator(64, 64, 8, 32, content="mirror")
