"""The warp target of Stage II (``loss.lambda_warp``): what the data loader builds, that it holds
no source pixel, that the loss reaches G and lowers, and that it is off by default."""

from __future__ import annotations

import pytest
import torch
from test_stage2 import build, faces_two_domains, heatmap_file, one_thread, small_config  # noqa: F401

from privlens.anonymize.warp import warp_reference
from privlens.train import losses_stage2 as L
from privlens.train import stage2
from privlens.train.config import ConfigError
from privlens.train.stage2_data import Stage2Faces

KEY = (0, 11, 0, 3, 22, 5, 33)  # source 0, target domain 0, references 3 and 5 (with their seeds)


def test_item_warps_the_first_reference_onto_the_source_landmarks(faces_two_domains):  # noqa: F811
    data = Stage2Faces(faces_two_domains, 32, augment=True, crop_p=0.0, warp_targets=True)
    item = data[KEY]
    reference = data.faces[(3, 22)]
    expected = warp_reference(reference["image"], reference["landmarks"], item["landmarks"], 32).clamp(0, 1)
    torch.testing.assert_close(item["warp_target"], expected)
    torch.testing.assert_close(item["reference"], reference["image"])
    other = data.faces[(5, 33)]
    wrong = warp_reference(other["image"], other["landmarks"], item["landmarks"], 32)
    assert float((item["warp_target"] - wrong).abs().mean()) > 0.02  # the first reference, not r2
    assert "warp_target" not in Stage2Faces(faces_two_domains, 32, augment=False)[KEY]
    heatmap = Stage2Faces(faces_two_domains, 32, crop_p=0.0, warp_targets=True, warp_geometry="heatmap")[KEY]
    assert "warp_target" not in heatmap  # the training loop warps onto U's landmarks instead
    torch.testing.assert_close(heatmap["reference_landmarks"], reference["landmarks"])


def test_warp_target_holds_no_source_pixel(faces_two_domains, monkeypatch):  # noqa: F811
    """Replacing the source's pixels (same landmarks) leaves the target unchanged."""
    data = Stage2Faces(faces_two_domains, 32, augment=True, crop_p=0.0, warp_targets=True)
    before = data[KEY]["warp_target"]
    original = data.faces.__class__.__getitem__

    def noisy_source(self, key):
        item = original(self, key)
        if key[0] == KEY[0]:
            item = dict(item, image=torch.rand_like(item["image"]))
        return item

    monkeypatch.setattr(data.faces.__class__, "__getitem__", noisy_source)
    after = data[KEY]
    torch.testing.assert_close(after["warp_target"], before)
    assert float((after["image"] - data.faces[(0, 11)]["image"]).abs().mean()) > 0  # the patch took


def test_loss_is_l1_and_refuses_mismatched_shapes():
    fake, target = torch.zeros(2, 3, 8, 8), torch.full((2, 3, 8, 8), 0.25)
    assert float(L.warp_target(fake, target)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="shape"):
        L.warp_target(fake, target[:, :, :4])


def _batch_with_targets(config, batch):
    data = Stage2Faces(config.data.root, config.data.image_size, augment=False, warp_targets=True)
    targets = []
    for i, ref in enumerate((2, 3)):
        source, reference = data.faces[i], data.faces[ref]
        targets.append(
            warp_reference(reference["image"], reference["landmarks"], source["landmarks"], 32).clamp(0, 1)
        )
    return dict(batch, warp_target=torch.stack(targets))


def test_iteration_uses_the_warp_target_only_when_weighted(faces_two_domains, heatmap_file):  # noqa: F811
    config = small_config(faces_two_domains, heatmap_file, "loss.lambda_warp=5")
    parts, optimizers, batch = build(config)
    out = stage2.scalars(
        stage2.train_iteration(parts, optimizers, _batch_with_targets(config, batch), 0, config)
    )
    assert out["g_ref/warp"] > 0 and "g_latent/warp" not in out  # only reference-guided steps
    off = small_config(faces_two_domains, heatmap_file)
    assert off.loss.lambda_warp == 0.0  # the paper's losses by default
    parts, optimizers, batch = build(off)
    out = stage2.scalars(stage2.train_iteration(parts, optimizers, batch, 0, off))  # no target needed
    assert "g_ref/warp" not in out


def test_a_few_steps_pull_the_output_towards_the_warp_target(faces_two_domains, heatmap_file):  # noqa: F811
    config = small_config(
        faces_two_domains,
        heatmap_file,
        "loss.lambda_warp=100",
        "loss.lambda_expr=0",
        "loss.lambda_cyc=0",
        "loss.lambda_ds=0",
        "optim.lr=0.002",
    )
    parts, optimizers, batch = build(config)
    batch = _batch_with_targets(config, batch)
    history = [stage2.scalars(stage2.train_iteration(parts, optimizers, batch, s, config)) for s in range(8)]
    assert history[-1]["g_ref/warp"] < 0.7 * history[0]["g_ref/warp"], [h["g_ref/warp"] for h in history]
    assert all(h["g_ref/ds"] == 0.0 for h in history)  # no weight, no second image


def test_negative_weight_is_refused(faces_two_domains, heatmap_file):  # noqa: F811
    with pytest.raises(ConfigError, match="loss.lambda_warp"):
        small_config(faces_two_domains, heatmap_file, "loss.lambda_warp=-1")


def test_heatmap_geometry_warps_onto_the_landmarks_u_decodes(faces_two_domains, heatmap_file):  # noqa: F811
    from privlens.anonymize.pipeline import heatmap_landmarks

    config = small_config(faces_two_domains, heatmap_file, "loss.lambda_warp=5", "loss.warp_geometry=heatmap")
    parts, optimizers, batch = build(config)
    data = Stage2Faces(config.data.root, config.data.image_size, augment=False, warp_targets=True)
    batch = dict(
        batch, reference_landmarks=torch.stack([data.faces[2]["landmarks"], data.faces[3]["landmarks"]])
    )
    _, heat = stage2.frozen_views(parts, batch["image"])
    targets = stage2.heatmap_warp_targets(batch, heat)
    decoded = heatmap_landmarks(heat, 32)
    for i in range(2):
        expected = warp_reference(batch["reference"][i], batch["reference_landmarks"][i], decoded[i], 32)
        torch.testing.assert_close(targets[i], expected.clamp(0, 1))
    # not the labels' geometry: the source's own landmarks give another target
    labels = warp_reference(batch["reference"][0], batch["reference_landmarks"][0], batch["landmarks"][0], 32)
    assert float((targets[0] - labels).abs().mean()) > 1e-3
    out = stage2.scalars(stage2.train_iteration(parts, optimizers, batch, 0, config))  # no warp_target needed
    assert out["g_ref/warp"] > 0
    with pytest.raises(ConfigError, match="loss.warp_geometry"):
        small_config(faces_two_domains, heatmap_file, "loss.warp_geometry=dlib")


def test_resume_accepts_a_key_added_later_at_its_default():
    from privlens.train.config import to_dict
    from privlens.train.stage2_config import Stage2Config

    current = to_dict(Stage2Config())
    older = {**current, "loss": {k: v for k, v in current["loss"].items() if k != "warp_geometry"}}
    stage2._check_resumable(older, current)  # an older checkpoint without the key
    changed = {**current, "loss": {**current["loss"], "warp_geometry": "heatmap"}}
    with pytest.raises(ConfigError, match="loss.warp_geometry"):
        stage2._check_resumable(older, changed)
