"""The heatmap network U: shapes, CoordConv channels, input checks, gradients."""

from __future__ import annotations

import pytest
import torch

from privlens.nets import HeatmapNet, add_coords


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is as fast, and cannot stall when another process holds a core."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_add_coords_channels():
    out = add_coords(torch.zeros(2, 1, 5, 7))
    assert out.shape == (2, 4, 5, 7)
    xx, yy, rr = out[0, 1], out[0, 2], out[0, 3]
    assert torch.allclose(xx[0], torch.linspace(-1, 1, 7))  # x along columns
    assert torch.allclose(yy[:, 0], torch.linspace(-1, 1, 5))  # y along rows
    assert rr[2, 3].abs() < 1e-6 and rr.max() == pytest.approx(1.0)  # centre 0, corners 1


def test_output_layout_quarter_resolution_landmarks_plus_masks():
    net = HeatmapNet(width=16, num_stacks=2, depth=3)
    outputs = net.forward_stacks(torch.rand(2, 3, 64, 32))
    assert len(outputs) == 2
    assert all(o.shape == (2, 70, 16, 8) for o in outputs)
    assert net.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 70, 8, 8)
    assert net.arch == {"num_landmarks": 68, "num_masks": 2, "width": 16, "num_stacks": 2, "depth": 3}
    assert HeatmapNet(**net.arch).state_dict().keys() == net.state_dict().keys()


def test_stride_two_gives_half_resolution_heatmaps_and_keeps_stride_four_files_loadable():
    fine = HeatmapNet(width=16, depth=2, stride=2).eval()
    assert fine(torch.rand(1, 3, 32, 32)).shape == (1, 70, 16, 16)
    assert fine.multiple == 8 and fine.arch["stride"] == 2
    assert HeatmapNet(**fine.arch).arch == fine.arch
    coarse = HeatmapNet(width=16, depth=2)
    assert "stride" not in coarse.arch  # files written before the option rebuild as stride 4
    assert fine.state_dict().keys() == coarse.state_dict().keys()  # same parameters, no pool
    with pytest.raises(ValueError, match="stride"):
        HeatmapNet(width=16, stride=3)


def test_paper_scale_network_size():
    net = HeatmapNet()  # width 256, one hourglass of depth 4, like StarGAN v2's FAN
    assert net.multiple == 64
    assert 5e6 < sum(p.numel() for p in net.parameters()) < 8e6


def test_bad_input_sizes_are_refused():
    net = HeatmapNet(width=16, depth=4)
    with pytest.raises(ValueError, match="multiple of 64"):
        net(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match="RGB"):
        net(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="multiple of 8"):
        HeatmapNet(width=12)


def test_every_parameter_and_the_input_get_gradients():
    net = HeatmapNet(width=16, num_stacks=2, depth=2)
    images = torch.rand(2, 3, 16, 16, requires_grad=True)
    sum(o.square().mean() for o in net.forward_stacks(images)).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_coordinates_let_a_constant_image_produce_position_dependent_output():
    torch.manual_seed(0)
    net = HeatmapNet(width=16, depth=2).eval()
    out = net(torch.full((1, 3, 32, 32), 0.5))
    assert out[0, 0].std() > 1e-4  # without CoordConv a constant input gives a near-constant map
