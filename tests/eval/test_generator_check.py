"""The generator check (issue 10's four figures): what it measures on known inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from privlens.eval.generator import check_generator, render_check
from privlens.nets import Generator, HeatmapNet, MappingNetwork, StyleEncoder
from privlens.optics.presets import make_camera
from privlens.train.stage2_bundle import GeneratorBundle


class _Copy(torch.nn.Module):
    """A 'generator' that returns the capture's source unchanged (to pin the figures)."""

    def __init__(self, faces: torch.Tensor) -> None:
        super().__init__()
        self.faces = faces
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, capture, heat, style):
        return self.faces[: capture.shape[0]]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _bundle(generator) -> GeneratorBundle:
    torch.manual_seed(0)
    s, f = StyleEncoder(64, 64, 1, 8, 32), MappingNetwork(16, 64, 1, 32)
    return GeneratorBundle(generator, s, f, ["face"], 64, 16, 64, {})


def test_a_copy_of_the_source_fails_identity_and_a_random_generator_fails_detection(lfw):
    faces = F.interpolate(lfw[:3], size=(64, 64), mode="area").clamp(0, 1)
    camera, u = make_camera("open", 64), HeatmapNet(width=8, depth=2)
    copy = check_generator(_bundle(_Copy(faces[:2])), camera, u, faces[:2], faces, seed=0)
    assert copy.detected == copy.detected_sources  # the outputs are the sources
    assert copy.n_pairs >= 1 and copy.identity == 0.0 and copy.identity_mean < 1e-6
    assert copy.geometry == 0.0 and copy.reference_l1 == 0.0 and copy.passes()["identity"] is False
    assert copy.rank1 == 1.0  # each output is nearest to its own source
    assert copy.rank1_landmarks in (None, 1.0)  # its landmarks too (None with one pair)
    from privlens.eval.generator import score_outputs

    swapped = score_outputs(faces, faces[[1, 2, 0]], faces[[2, 0, 1]], 3)  # another person's face
    assert swapped.n_pairs == 3 and swapped.rank1 == 0.0
    assert swapped.rank1_landmarks == 0.0  # another photo's pose too
    same_pose = score_outputs(faces, faces, faces[[2, 0, 1]], 3)
    assert same_pose.rank1_landmarks == 1.0 and "pick out the photo" in render_check(same_pose)
    assert swapped.impostor_mean < swapped.identity_mean  # nearest to the person it shows
    assert "nearest of the 3 sources" in render_check(swapped)
    torch.manual_seed(0)
    random = check_generator(_bundle(Generator(64, 64, 8, 32)), camera, u, faces[:2], faces)
    assert random.detected == 0.0 and random.identity is None and random.passes()["detected"] is False
    assert random.reference_l1 > 0  # He init: references already change the output
    text = render_check(random)
    assert "held-out faces" in text and "n/a" in text
    assert json.loads(render_check(random, "json"))["passes"]["identity"] is None
    with pytest.raises(ValueError, match=r"\[N, 3, 64, 64\]"):
        check_generator(_bundle(Generator(64, 64, 8, 32)), camera, u, faces[:, :, :32, :32], faces)
    with pytest.raises(ValueError, match="2 references"):
        check_generator(_bundle(Generator(64, 64, 8, 32)), camera, u, faces[:2], faces[:1])


def test_warp_baseline_paints_the_references_not_the_source(lfw):
    """The warp backend's figures: its outputs are reference pixels (two references give
    different faces), it has no latent, and it needs two references with landmarks."""
    from privlens.anonymize.references import prepare_reference
    from privlens.eval.generator import check_warp_backend, warp_pairs

    faces = F.interpolate(lfw[:6], size=(64, 64), mode="area").clamp(0, 1)
    references = [prepare_reference(Path(f"r{i}.png"), face, 64) for i, face in enumerate(faces[2:])]
    references = [r for r in references if not isinstance(r, str)]
    assert len(references) >= 2
    camera, u = make_camera("open", 64), HeatmapNet(width=8, depth=2)
    out_a, out_b = warp_pairs(camera, u, faces[:2], references)
    assert out_a.shape == out_b.shape == (2, 3, 64, 64)
    # every output value lies within the range of its reference's values (a warp only resamples)
    for i in range(2):
        for out, shift in ((out_a, 0), (out_b, 1)):
            ref = references[(i + shift) % len(references)].image
            assert (
                float(out[i].min()) >= float(ref.min()) - 1e-4
                and float(out[i].max()) <= float(ref.max()) + 1e-4
            )
    check = check_warp_backend(camera, u, faces[:2], references)
    assert check.latent_l1 is None and check.reference_l1 > 0.01 and check.n_references == len(references)
    assert "two latents: n/a" in render_check(check)
    with pytest.raises(ValueError, match="2 references"):
        check_warp_backend(camera, u, faces[:2], references[:1])
    # drawn: two distinct references per source, the same ones for the same seed
    drawn = [warp_pairs(camera, u, faces[:2], references, "drawn", seed) for seed in (5, 5, 6)]
    assert torch.equal(drawn[0][0], drawn[1][0]) and torch.equal(drawn[0][1], drawn[1][1])
    assert not torch.equal(drawn[0][0], drawn[0][1])
    with pytest.raises(ValueError, match="unknown reference choice"):
        warp_pairs(camera, u, faces[:2], references, "nearest")


def test_generate_pairs_styles_each_source_with_the_references_it_is_given(lfw):
    from privlens.eval.generator import generate_pairs

    faces = F.interpolate(lfw[:4], size=(64, 64), mode="area").clamp(0, 1)
    camera, u = make_camera("open", 64), HeatmapNet(width=8, depth=2)
    torch.manual_seed(0)
    bundle = _bundle(Generator(64, 64, 8, 32))
    default = generate_pairs(bundle, camera, u, faces[:2], faces)
    cycled = generate_pairs(bundle, camera, u, faces[:2], faces, pairs=torch.tensor([[0, 1], [1, 2]]))
    swapped = generate_pairs(bundle, camera, u, faces[:2], faces, pairs=torch.tensor([[1, 0], [2, 1]]))
    assert torch.allclose(default[0], cycled[0]) and torch.allclose(default[1], cycled[1])
    assert torch.allclose(swapped[0], cycled[1]) and torch.allclose(swapped[1], cycled[0])
    assert not torch.allclose(cycled[0], cycled[1])


def test_generate_pairs_gives_a_warp_content_generator_the_warped_references(lfw):
    """A ``content="warp"`` generator is fed each pair's reference warped onto U's landmarks (never
    the capture), and without the references' landmarks it is refused."""
    from privlens.anonymize.pipeline import heatmap_landmarks
    from privlens.anonymize.warp import warp_batch
    from privlens.eval.generator import generate_pairs

    faces = F.interpolate(lfw[:3], size=(64, 64), mode="area").clamp(0, 1)
    points = torch.rand(3, 68, 2, generator=torch.Generator().manual_seed(0)) * 40 + 12
    camera, u = make_camera("open", 64), HeatmapNet(width=8, depth=2)
    torch.manual_seed(0)
    generator = Generator(64, 64, 8, 32, content="warp")
    seen = []
    original = generator.forward
    generator.forward = lambda content, heat, style: seen.append(content) or original(content, heat, style)
    bundle = _bundle(generator)
    pairs = torch.tensor([[1, 2], [2, 0]])
    generate_pairs(bundle, camera, u, faces[:2], faces, pairs=pairs, reference_landmarks=points)
    with torch.no_grad():
        targets = heatmap_landmarks(u(camera(faces[:2]).image), 64)
    expected = warp_batch(faces[pairs[:, 1]], points[pairs[:, 1]], targets)
    assert torch.allclose(seen[1], expected, atol=1e-5)
    with pytest.raises(ValueError, match="landmarks"):
        generate_pairs(bundle, camera, u, faces[:2], faces, pairs=pairs)
    check = check_generator(bundle, camera, u, faces[:2], faces, pairs=pairs, reference_landmarks=points)
    assert any("warped references they read" in note for note in check.notes)
