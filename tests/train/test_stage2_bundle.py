"""The generator bundle: round trip, and clear errors for missing, corrupt and foreign files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from privlens.nets import Generator, HeatmapNet, MappingNetwork, StyleEncoder
from privlens.optics.lensfile import save_lens
from privlens.optics.presets import make_camera
from privlens.train import GeneratorBundleError, load_generator_bundle, save_generator_bundle
from privlens.train.checkpoint import save_checkpoint, save_heatmap_net


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on two shared cores, two threads of these small convolutions spin
    against other processes and can run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _nets(seed: int = 0):
    torch.manual_seed(seed)
    g = Generator(64, base_width=8, max_width=32)
    s = StyleEncoder(64, num_domains=2, base_width=8, max_width=32)
    f = MappingNetwork(16, 64, num_domains=2, hidden=32)
    return g, s, f


def test_round_trip_gives_the_same_outputs(tmp_path):
    g, s, f = _nets()
    path = save_generator_bundle(
        tmp_path / "generator.safetensors", g, s, f, ["female", "male"], {"steps": 3}
    )
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        keys = list(handle.keys())
    assert meta["format"] == "privlens-stage2" and meta["version"] == "1"
    config = json.loads(meta["config"])
    assert config["domains"] == ["female", "male"] and config["image_size"] == 64 and config["w_hpf"] == 1.0
    assert {k.split(".")[0] for k in keys} == {"generator", "style_encoder", "mapping"}

    bundle = load_generator_bundle(path)
    assert bundle.domains == ["female", "male"] and bundle.domain_index("male") == 1
    assert (bundle.image_size, bundle.latent_dim, bundle.style_dim) == (64, 16, 64)
    assert bundle.provenance == {"steps": 3}
    assert not bundle.generator.training and not any(p.requires_grad for p in bundle.generator.parameters())
    torch.manual_seed(1)
    x, heat, z, d = (
        torch.rand(2, 3, 64, 64),
        torch.rand(2, 70, 16, 16),
        torch.randn(2, 16),
        torch.tensor([0, 1]),
    )
    g.eval(), s.eval(), f.eval()
    with torch.no_grad():
        torch.testing.assert_close(bundle.style_encoder(x, d), s(x, d), rtol=0, atol=0)
        torch.testing.assert_close(bundle.mapping(z, d), f(z, d), rtol=0, atol=0)
        torch.testing.assert_close(bundle.generator(x, heat, s(x, d)), g(x, heat, s(x, d)), rtol=0, atol=0)
    # a run folder is accepted in place of the file
    assert load_generator_bundle(tmp_path).domains == ["female", "male"]
    with pytest.raises(ValueError, match="unknown domain"):
        bundle.domain_index("other")


def test_inconsistent_domains_are_refused(tmp_path):
    g, s, f = _nets()
    with pytest.raises(ValueError, match="domain names"):
        save_generator_bundle(tmp_path / "g.safetensors", g, s, f, ["only-one"])


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(GeneratorBundleError, match="not found"):
        load_generator_bundle(tmp_path / "absent.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01 not a safetensors file at all")
    with pytest.raises(GeneratorBundleError, match="not a readable safetensors"):
        load_generator_bundle(junk)
    lens = save_lens(make_camera("open", 64), tmp_path / "lens.safetensors")
    with pytest.raises(GeneratorBundleError, match="lens file"):
        load_generator_bundle(lens)
    net = save_heatmap_net(HeatmapNet(width=16, depth=2), tmp_path / "heatmap_net.safetensors")
    with pytest.raises(GeneratorBundleError, match="heatmap-network"):
        load_generator_bundle(net)
    g, s, f = _nets()
    ckpt = save_checkpoint(tmp_path / "checkpoint.safetensors", {"g": g}, {}, {"step": 1})
    with pytest.raises(GeneratorBundleError, match="training checkpoint"):
        load_generator_bundle(ckpt)
    assert issubclass(GeneratorBundleError, ValueError)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    g, s, f = _nets()
    path = save_generator_bundle(tmp_path / "generator.safetensors", g, s, f, ["a", "b"])
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    del tensors[next(k for k in tensors if k.startswith("generator."))]
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), meta)
    with pytest.raises(GeneratorBundleError, match="generator weights do not fit"):
        load_generator_bundle(broken)
    meta_bad = dict(meta, config="{not json")
    save_file(load_file(str(path)), str(broken), meta_bad)
    with pytest.raises(GeneratorBundleError, match="corrupt bundle metadata"):
        load_generator_bundle(broken)


def test_bundle_keeps_ema_and_raw_weights_and_may_store_half_precision(tmp_path):
    ema, raw = _nets(0), _nets(1)
    path = save_generator_bundle(
        tmp_path / "g.safetensors",
        *ema,
        ["a", "b"],
        raw=dict(zip(("generator", "style_encoder", "mapping"), raw, strict=True)),
        dtype=torch.float16,
    )
    with safe_open(str(path), framework="pt") as handle:
        assert json.loads(handle.metadata()["config"])["weights"] == ["ema", "raw"]
        assert handle.get_tensor("raw.generator.to_rgb.2.weight").dtype == torch.float16
    got_ema = load_generator_bundle(path)
    got_raw = load_generator_bundle(path, weights="raw")
    for got, want in ((got_ema, ema[0]), (got_raw, raw[0])):
        weight = got.generator.state_dict()["to_rgb.2.weight"]
        assert weight.dtype == torch.float32
        torch.testing.assert_close(weight, want.state_dict()["to_rgb.2.weight"], atol=1e-3, rtol=1e-3)
    assert not torch.equal(got_ema.generator.to_rgb[2].weight, got_raw.generator.to_rgb[2].weight)
    only_ema = save_generator_bundle(tmp_path / "e.safetensors", *ema, ["a", "b"])
    with pytest.raises(GeneratorBundleError, match="no raw weights"):
        load_generator_bundle(only_ema, weights="raw")
    with pytest.raises(GeneratorBundleError, match="weights must be"):
        load_generator_bundle(only_ema, weights="best")
