"""The generator check (issue 10's four figures): what it measures on known inputs."""

from __future__ import annotations

import json

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
