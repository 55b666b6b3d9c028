"""Checkpoints round-trip exactly; the losses follow Eqs. 4-6 and the heatmap loss trains."""

from __future__ import annotations

import pytest
import torch

from privlens.nets import HeatmapNet
from privlens.optics.lensfile import save_lens
from privlens.optics.presets import make_camera
from privlens.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_heatmap_net,
    save_checkpoint,
    save_heatmap_net,
)
from privlens.train.losses import distortion, heatmap_targets, psf_distance, stage1_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is as fast, and cannot stall when another process holds a core."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _step(net, camera, optimizers, x):
    y = camera(x).image
    loss = net(y).square().mean() - (x - y).square().mean()
    for o in optimizers.values():
        o.zero_grad()
    loss.backward()
    for o in optimizers.values():
        o.step()


def test_checkpoint_round_trip_continues_identically(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    net, camera = HeatmapNet(width=16, depth=3), make_camera("open", 32)
    optimizers = {
        "net": torch.optim.Adam(net.parameters(), 1e-3),
        "camera": torch.optim.Adam([camera.coeffs_um], 1e-2),
    }
    _step(net, camera, optimizers, x)
    save_checkpoint(tmp_path / "c.safetensors", {"net": net, "camera": camera}, optimizers, {"step": 1})
    assert b"pickle" not in (tmp_path / "c.safetensors").read_bytes()[:200]

    torch.manual_seed(1)
    net2, camera2 = HeatmapNet(width=16, depth=3), make_camera("open", 32)
    optimizers2 = {
        "net": torch.optim.Adam(net2.parameters(), 1e-3),
        "camera": torch.optim.Adam([camera2.coeffs_um], 1e-2),
    }
    meta = load_checkpoint(tmp_path / "c.safetensors", {"net": net2, "camera": camera2}, optimizers2)
    assert meta == {"step": 1}
    _step(net, camera, optimizers, x)
    _step(net2, camera2, optimizers2, x)
    assert torch.equal(camera.coeffs_um, camera2.coeffs_um)
    for (name, a), b in zip(net.state_dict().items(), net2.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_weight_files_and_wrong_files(tmp_path):
    net = HeatmapNet(width=16, depth=2)
    path = save_heatmap_net(net, tmp_path / "u.safetensors", {"note": "test"})
    loaded = load_heatmap_net(path)
    assert loaded.arch == net.arch
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
    with pytest.raises(CheckpointError, match="architecture"):
        load_heatmap_net(path, expect={**net.arch, "width": 32})
    lens = save_lens(make_camera("open", 32), tmp_path / "lens.safetensors")
    with pytest.raises(CheckpointError, match="not a privlens heatmap-network"):
        load_heatmap_net(lens)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_heatmap_net(tmp_path / "junk.safetensors")


def test_loss_parts():
    x = torch.rand(2, 3, 16, 16)
    assert distortion(x, x) == 0
    assert distortion(torch.zeros_like(x), torch.ones_like(x)) == 1
    psf = torch.rand(3, 8, 8)
    assert psf_distance(psf, psf) == 0
    assert torch.isclose(psf_distance(psf, torch.zeros_like(psf)), psf.norm())
    landmarks = torch.tensor([[[20.0, 30.0]] * 68])
    target = heatmap_targets(landmarks, 64, 16)
    assert target.shape == (1, 70, 16, 16)
    assert target[0, 0].max() == pytest.approx(1.0, abs=0.05)
    peak = torch.nonzero(target[0, 0] == target[0, 0].max())[0]
    assert peak.tolist() == [7, 5]  # (30 + 0.5) / 4 - 0.5 = 7.125 rows, (20 + 0.5) / 4 - 0.5 = 4.625 cols


def test_heatmap_loss_trains_u_and_the_lens():
    """The paper's released code computed this term under no_grad; here it must reach U and beta."""
    torch.manual_seed(0)
    camera, net = make_camera("defocus", 32), HeatmapNet(width=16, depth=3)
    x = torch.rand(2, 3, 32, 32)
    target = heatmap_targets(torch.rand(2, 68, 2) * 31, 32, 8)
    capture, psf = camera(x)
    loss = stage1_loss(
        x, capture, psf, camera.defocus_psf(0.5), net.forward_stacks(capture), target, optics=False
    )
    assert float(loss.total.detach()) == pytest.approx(2.0 * float(loss.heatmap.detach()))
    loss.heatmap.backward()
    assert camera.coeffs_um.grad[3:].abs().sum() > 0
    assert torch.all(camera.coeffs_um.grad[:3] == 0)  # piston, tip, tilt frozen
    assert all(p.grad is not None for p in net.parameters())
    capture, psf = capture.detach(), psf.detach()
    full = stage1_loss(x, capture, psf, camera.defocus_psf(0.5), target, target, 10.0, 2.0)
    assert float(full.heatmap) == 0 and float(full.psf) == pytest.approx(0.0, abs=1e-6)
    assert float(full.total) == pytest.approx(1.0 - float(distortion(x, capture)), abs=1e-5)
