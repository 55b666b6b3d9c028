"""The attack suite on the embedded LFW faces (64 px, small settings)."""

import pytest
import torch

from privlens.attacks.deconvolution import wiener_deconvolve
from privlens.attacks.identity import OriginalBoxIdentity
from privlens.attacks.inversion import InversionTraining, InversionUNet, invert, train_inversion
from privlens.attacks.job import embedded_faces, split_faces
from privlens.attacks.suite import (
    AttackSettings,
    attack_lens,
    bicubic_from_large_pixels,
    choose_rl,
    choose_wiener,
    make_captures,
)
from privlens.eval.quality import psnr
from privlens.optics import make_camera


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return embedded_faces(64)


def test_open_lens_is_fully_reidentified_after_every_attack(faces):
    attacker, evaluation = split_faces(faces[:40], 8)
    settings = AttackSettings(
        wiener_lambdas=(1e-6, 1e-3), rl_iterations=(1, 5), inversion=InversionTraining(steps=20, width=8)
    )
    result = attack_lens(
        "open", make_camera("open", 64), attacker, evaluation, settings, OriginalBoxIdentity()
    )
    assert set(result.scores) == {"none", "wiener", "richardson-lucy", "inversion"}
    for attack, scores in result.scores.items():
        assert scores["measured_faces"] >= 5, attack
        assert scores["reidentified"] == 1.0, attack
        assert scores["identity_distance"] < 0.3, attack


def test_identity_distance_separates_people(faces):
    identity = OriginalBoxIdentity()
    evaluation = faces[:8]
    same = identity(evaluation, evaluation)
    other = identity(evaluation, evaluation.roll(1, dims=0))
    valid = ~torch.isnan(same)
    assert valid.sum() >= 6
    assert torch.all(same[valid] == 0)
    assert other[valid].nanmean() > 0.6


def test_attacker_choices_are_the_psnr_best_on_their_own_faces(faces):
    camera = make_camera("defocus", 64)
    attacker = faces[40:60]
    captures = make_captures(camera, attacker, quantise=True)
    psf = camera.psf().detach()
    lambdas = (1e-6, 1e-4, 1e-2, 1.0)
    choice = choose_wiener(captures, attacker, psf, lambdas)
    independent = {
        lam: float(psnr(wiener_deconvolve(captures, psf, lam), attacker).mean()) for lam in lambdas
    }
    assert choice.value == max(independent, key=independent.get)
    assert choice.candidates == pytest.approx(independent, abs=1e-4)
    assert len(set(round(v, 3) for v in independent.values())) == len(lambdas)  # a real choice
    rl = choose_rl(captures, attacker, psf, (1, 3, 10))
    assert rl.value == max(rl.candidates, key=rl.candidates.get)


def test_learned_inversion_improves_over_the_raw_capture(faces):
    camera = make_camera("defocus", 64)
    attacker, evaluation = faces[20:], faces[:20]
    model = train_inversion(camera, attacker, InversionTraining(steps=60, width=8, batch_size=8))
    captures = make_captures(camera, evaluation, quantise=True)
    recovered = invert(model, captures)
    assert float(psnr(recovered, evaluation).mean()) > float(psnr(captures, evaluation).mean()) + 1.0


def test_lowres_attacks_are_bicubic_and_inversion(faces):
    attacker, evaluation = split_faces(faces[:24], 4)
    settings = AttackSettings(inversion=None)
    result = attack_lens("lowres", make_camera("lowres", 64), attacker, evaluation, settings)
    assert set(result.recovered) == {"none", "bicubic"}
    assert result.scores["bicubic"]["psnr"] > result.scores["none"]["psnr"]
    # a smooth scene is recovered from its large-pixel reading better than the blocky reading
    ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64).contiguous()
    reading = make_camera("lowres", 64)(ramp).image.detach()
    assert float(psnr(bicubic_from_large_pixels(reading, 16), ramp)) > float(psnr(reading, ramp)) + 3


def test_unet_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible by 8"):
        InversionUNet(width=4, depth=3)(torch.rand(1, 3, 60, 60))
    assert InversionUNet(width=4, depth=2)(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_split_needs_faces_on_both_sides(faces):
    with pytest.raises(ValueError, match="attacker"):
        split_faces(faces[:5], 5)
