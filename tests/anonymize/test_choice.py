"""The identity-aware reference choice (``--reference-choice far``) of the warp backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from privlens.anonymize.choice import embed_on_landmarks, far_references
from privlens.anonymize.pipeline import Anonymizer, WarpBackend
from privlens.anonymize.references import Slot, StylePlanner, load_references
from privlens.optics import make_camera

SIZE = 64


@pytest.fixture(scope="module")
def pool(references):
    """Four copies of one face and one other person: the other is the odd one out."""
    found = load_references(references, SIZE).references
    return [found[0]] * 4 + [found[1]]


def test_embeddings_on_known_landmarks_separate_people(pool):
    faces = torch.stack([pool[0].image, pool[4].image])
    same = embed_on_landmarks(faces[:1].repeat(2, 1, 1, 1), pool[0].landmarks)
    assert np.allclose(same[0], same[1])
    assert same.shape == (2, 128)
    other = embed_on_landmarks(faces, pool[0].landmarks)
    assert np.linalg.norm(other[0] - other[1]) > 0.3  # two LFW people, not one


def test_far_choice_takes_the_face_unlike_the_others(pool):
    target = pool[0].landmarks
    assert far_references(pool, target, SIZE, count=1) == [4]
    second = far_references(pool, target, SIZE, count=2, taken=[4])
    assert 4 not in second and len(set(second)) == 2
    with pytest.raises(ValueError, match="cannot choose 5 more"):
        far_references(pool, target, SIZE, count=5, taken=[4])


def test_far_slots_are_resolved_once_and_kept(pool):
    """The backend writes its choice into the slot; a slot seen again (a video track) keeps it."""
    camera = make_camera("defocus", SIZE)
    net_maps = None

    class FixedU(torch.nn.Module):
        multiple, depth, num_landmarks = 16, 2, 68

        def forward(self, images):
            return net_maps.expand(images.shape[0], -1, -1, -1)

    from privlens.faces.heatmaps import render_heatmaps

    maps = render_heatmaps(torch.as_tensor(pool[0].landmarks, dtype=torch.float32), SIZE, SIZE // 4)
    net_maps = torch.cat([maps, torch.zeros(2, *maps.shape[-2:])])
    anonymizer = Anonymizer(camera, FixedU(), WarpBackend(pool))
    slot = Slot(far=True)
    scene = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    first = anonymizer.run(scene, [[slot], [slot]])
    assert slot.reference == 4
    assert torch.equal(first.faces[0, 0], first.faces[1, 0])
    slot.reference = 1  # as if chosen on another frame: never re-chosen
    again = anonymizer.run(scene[:1], [[slot]])
    assert slot.reference == 1 and not torch.equal(again.faces[0, 0], first.faces[0, 0])


def test_planner_leaves_far_slots_to_the_warp_backend():
    slots = StylePlanner(2, seed=0, num_references=5, reference_choice="far").next()
    assert [(s.far, s.reference) for s in slots] == [(True, None), (True, None)]
    gan = StylePlanner(1, 0, num_references=5, domains=["a", "b"], domain="b", reference_choice="far").next()
    assert gan[0].far and gan[0].reference is None and gan[0].domain == 1
    with pytest.raises(ValueError, match="cannot go with --latent"):
        StylePlanner(1, 0, latent_dim=16, domains=["a"], reference_choice="far")
    with pytest.raises(ValueError, match="seeded, far"):
        StylePlanner(1, 0, num_references=5, reference_choice="nearest")
    with pytest.raises(ValueError, match="only 2 usable"):
        StylePlanner(3, 0, num_references=2, reference_choice="far")


def test_anonymize_command_records_the_far_choice(models, references, tmp_path):
    import json

    from typer.testing import CliRunner

    from privlens.cli import app
    from privlens.data.images import save_image
    from privlens.data.samples import lfw_faces

    photos = tmp_path / "in"
    save_image(lfw_faces()[40], photos / "a.png")
    out = tmp_path / "out"
    args = ["anonymize", str(photos), "--run", str(models), "--generator", "warp", "--reference"]
    args += [str(references), "--detector", "dlib", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--reference-choice", "far"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "anonymize.json").read_text())
    assert manifest["settings"]["reference_choice"] == "far"
    faces = [face for item in manifest["inputs"] for face in item["faces"]]
    assert faces and all(Path(face["style"]["reference"]).parent == references for face in faces)
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x"), "--reference-choice", "near"])
    assert bad.exit_code == 2 and "seeded, far" in bad.output
    assert not (tmp_path / "x").exists()


def test_the_gan_backend_resolves_far_slots_as_the_warp_backend(pool):
    from privlens.anonymize.pipeline import GanBackend
    from privlens.nets import Generator, MappingNetwork, StyleEncoder
    from privlens.train.stage2_bundle import GeneratorBundle

    torch.manual_seed(0)
    bundle = GeneratorBundle(
        Generator(SIZE, 64, 8, 32),
        StyleEncoder(SIZE, 64, 1, 8, 32),
        MappingNetwork(16, 64, 1, 32),
        ["face"],
        SIZE,
        16,
        64,
        {},
    )
    backend = GanBackend(bundle, pool)
    landmarks = torch.as_tensor(pool[0].landmarks, dtype=torch.float32)[None]
    slots = [Slot(far=True, domain=0), Slot(far=True, domain=0)]
    captures = torch.rand(1, 3, SIZE, SIZE)
    faces = backend.generate(captures, torch.zeros(1, 70, SIZE // 4, SIZE // 4), landmarks, [slots])
    assert faces.shape == (1, 2, 3, SIZE, SIZE)
    assert slots[0].reference == 4 and slots[1].reference not in (None, 4)
