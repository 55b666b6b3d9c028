"""Stage II networks: shapes, ranges, per-domain heads, the heatmap-gated skips and input checks."""

from __future__ import annotations

import pytest
import torch

from privlens.nets import Discriminator, Generator, HeatmapNet, MappingNetwork, StyleEncoder

SIZE = 64


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on two shared cores, two threads of these small convolutions spin
    against other processes and can run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_generator(**kwargs) -> Generator:
    return Generator(SIZE, style_dim=64, base_width=8, max_width=32, **kwargs)


def test_generator_shapes_range_and_heatmapnet_output():
    torch.manual_seed(0)
    net = HeatmapNet(width=16, depth=2)
    captures = torch.rand(2, 3, SIZE, SIZE)
    heatmaps = net(captures)  # exactly what U returns
    assert heatmaps.shape == (2, 70, SIZE // 4, SIZE // 4)
    out = tiny_generator()(captures, heatmaps, torch.randn(2, 64))
    assert out.shape == (2, 3, SIZE, SIZE)
    assert float(out.detach().min()) >= 0.0 and float(out.detach().max()) <= 1.0


def test_paper_scale_widths_follow_stargan_v2():
    g = Generator(256)
    assert g.base_width == 64 and g.skip_sizes == (32, 64, 128)
    assert g.encoder.widths == [64, 128, 256, 512, 512, 512]
    assert Generator(256, w_hpf=0).skip_sizes == ()


def test_style_changes_output_and_styles_are_per_sample():
    torch.manual_seed(0)
    g = tiny_generator().eval()
    captures, heat = torch.rand(1, 3, SIZE, SIZE), torch.rand(1, 70, 16, 16)
    a = g(captures, heat, torch.randn(1, 64))
    b = g(captures, heat, torch.randn(1, 64))
    assert float((a - b).detach().abs().mean()) > 1e-4
    # a batch gives each sample its own result (instance norm, no cross-sample mixing)
    both = g(captures.expand(2, -1, -1, -1), heat.expand(2, -1, -1, -1), torch.cat([torch.randn(1, 64)] * 2))
    torch.testing.assert_close(both[0], both[1])


def test_only_the_mask_channels_of_the_heatmap_matter():
    torch.manual_seed(0)
    g = tiny_generator().eval()
    captures, style = torch.rand(1, 3, SIZE, SIZE), torch.randn(1, 64)
    heat = torch.rand(1, 70, 16, 16)
    other = heat.clone()
    other[:, :68] = torch.rand(1, 68, 16, 16)  # landmark channels changed, masks kept
    torch.testing.assert_close(g(captures, heat, style), g(captures, other, style))
    masks_off = heat.clone()
    masks_off[:, 68:] = 0.0  # the gates closed: the high-pass skips contribute nothing
    assert not torch.allclose(g(captures, heat, style), g(captures, masks_off, style))
    # with the skips off, the heatmap is not needed at all
    g0 = Generator(SIZE, base_width=8, max_width=32, w_hpf=0).eval()
    assert g0(captures, None, style).shape == (1, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match="heatmaps are required"):
        g(captures, None, style)


def test_mapping_and_style_encoder_use_the_domain_head():
    torch.manual_seed(0)
    mapping = MappingNetwork(16, 64, num_domains=3, hidden=32)
    z = torch.randn(1, 16).expand(3, -1)
    styles = mapping(z, torch.tensor([0, 1, 2]))
    assert styles.shape == (3, 64)
    assert not torch.allclose(styles[0], styles[1]) and not torch.allclose(styles[1], styles[2])
    # the head of domain d equals running that head alone
    h = mapping.shared(z[:1])
    torch.testing.assert_close(styles[2:3], mapping.heads[2](h))
    encoder = StyleEncoder(SIZE, 64, num_domains=3, base_width=8, max_width=32)
    images = torch.rand(1, 3, SIZE, SIZE).expand(3, -1, -1, -1)
    s = encoder(images, torch.tensor([0, 1, 2]))
    assert s.shape == (3, 64) and not torch.allclose(s[0], s[1])


def test_discriminator_one_logit_per_sample_of_its_domain():
    torch.manual_seed(0)
    d = Discriminator(SIZE, num_domains=2, base_width=8, max_width=32)
    images = torch.rand(2, 3, SIZE, SIZE)
    both = d.head(d.trunk(images))
    logits = d(images, torch.tensor([1, 0]))
    assert logits.shape == (2,)
    torch.testing.assert_close(logits, torch.stack([both[0, 1], both[1, 0]]))


def test_bad_inputs_are_refused_clearly():
    g = tiny_generator()
    with pytest.raises(ValueError, match="power of two"):
        Generator(48)
    with pytest.raises(ValueError, match=r"\[B, 3, 64, 64\]"):
        g(torch.rand(1, 3, 32, 32), torch.rand(1, 70, 8, 8), torch.randn(1, 64))
    with pytest.raises(ValueError, match="K > 69"):
        g(torch.rand(1, 3, SIZE, SIZE), torch.rand(1, 68, 16, 16), torch.randn(1, 64))
    with pytest.raises(ValueError, match="LongTensor"):
        MappingNetwork(16, 64, 2, 32)(torch.randn(2, 16), torch.tensor([0.0, 1.0]))


def test_he_init_gives_styles_that_vary_with_their_inputs(lfw):
    """He init (as StarGAN v2): F(z) varies across z and S(x) across real faces by a usable amount.
    With PyTorch's default init F(z) varied by about 6e-4 and S(x) by 5e-4 (issue 10)."""
    from privlens.nets.stargan import he_init

    torch.manual_seed(0)
    mapping = MappingNetwork(16, 64, num_domains=1, hidden=64)
    domains = torch.zeros(32, dtype=torch.long)
    with torch.no_grad():
        styles = mapping(torch.randn(32, 16), domains)
    assert 0.2 < float(styles.std(0).mean()) < 5.0  # neither vanishing nor exploding
    encoder = StyleEncoder(SIZE, 64, num_domains=1, base_width=8, max_width=32)
    faces = torch.nn.functional.interpolate(lfw[:32], size=(SIZE, SIZE), mode="area")
    with torch.no_grad():
        spread = float(encoder(faces, domains).std(0).mean())
    assert spread > 0.01
    for module in (mapping, encoder):  # every conv/linear weight has the He variance, biases are 0
        for layer in module.modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = layer.weight[0].numel()
                std = float(layer.weight.detach().std())
                assert (
                    abs(std - (2.0 / fan_in) ** 0.5) < 0.25 * (2.0 / fan_in) ** 0.5
                    or layer.weight.numel() < 64
                )
                assert layer.bias is None or not layer.bias.any()
    # the same network with PyTorch's default init collapses the spread of F(z)
    default = MappingNetwork(16, 64, num_domains=1, hidden=64)
    for layer in default.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()
    with torch.no_grad():
        collapsed = float(default(torch.randn(32, 16), domains).std(0).mean())
    assert collapsed < 0.05 * float(styles.std(0).mean())
    layer = torch.nn.Linear(4, 3)
    he_init(layer)
    assert not layer.bias.any()


def test_generator_output_depends_on_the_style_at_init():
    """At init two styles give visibly different images (not the 1e-3 of the default init)."""
    torch.manual_seed(0)
    g = tiny_generator().eval()
    mapping = MappingNetwork(16, 64, num_domains=1, hidden=64)
    captures, heat = (
        torch.rand(1, 3, SIZE, SIZE).expand(4, -1, -1, -1),
        torch.rand(1, 70, 16, 16).expand(4, -1, -1, -1),
    )
    with torch.no_grad():
        out = g(captures, heat, mapping(torch.randn(4, 16), torch.zeros(4, dtype=torch.long)))
    assert float((out[0] - out[1]).abs().mean()) > 0.01


def test_residual_warp_generator_starts_from_its_content_and_learns_a_correction():
    """``residual``: an untrained G returns the warp it reads, bit for bit; one gradient step on
    its last layer makes the output move; a residual on the capture is refused."""
    torch.manual_seed(0)
    generator = tiny_generator(content="warp", residual=True)
    content = torch.rand(2, 3, SIZE, SIZE)
    heat = torch.rand(2, 70, SIZE // 4, SIZE // 4)
    style = torch.randn(2, 64)
    assert torch.equal(generator(content, heat, style), content)
    loss = (generator(content, heat, style) - 0.5).abs().mean()
    loss.backward()
    assert generator.to_rgb[2].weight.grad.abs().sum() > 0
    assert generator.arch["residual"] is True and generator.arch["content"] == "warp"
    with pytest.raises(ValueError, match="residual needs content='warp'"):
        tiny_generator(residual=True)
