"""privlens.models: U's file (size, mean shape), provenance hashes, shipped models, size checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from privlens.models import (
    SHIPPED,
    HeatmapModel,
    ModelFileError,
    ModelHashError,
    ModelSizeError,
    ShippedModel,
    check_same_size,
    image_size_of,
    load_heatmap_model,
    load_model,
    load_shipped,
    read_provenance,
    register,
    registry,
    save_heatmap_net,
    sha256_of,
    verify_file,
    write_provenance,
)
from privlens.nets import HeatmapNet
from privlens.optics.lensfile import save_lens
from privlens.optics.presets import make_camera

FIELDS = dict(
    kind="heatmap", image_size=32, data="test", steps=1, seconds=0.1, machine="cpu", git_commit=None
)


def _tiny_u(path, size=32):
    torch.manual_seed(0)
    net = HeatmapNet(width=8, depth=1)
    mean = np.random.default_rng(0).uniform(0, size, (68, 2))
    return net, mean, save_heatmap_net(net, path, {"note": "t"}, image_size=size, mean_shape=mean)


def test_heatmap_file_keeps_size_and_mean_shape(tmp_path):
    net, mean, path = _tiny_u(tmp_path / "u.safetensors")
    model = load_heatmap_model(path)
    assert isinstance(model, HeatmapModel) and model.image_size == 32
    assert np.allclose(model.mean_shape, mean, atol=1e-4)
    assert not model.net.training
    for key, value in net.state_dict().items():
        assert torch.equal(model.net.state_dict()[key], value)
    old = save_heatmap_net(net, tmp_path / "old.safetensors")  # files that do not say
    assert load_heatmap_model(old).image_size is None and load_heatmap_model(old).mean_shape is None


def test_old_import_path_and_error_class_still_work(tmp_path):
    from privlens.train.checkpoint import CheckpointError, load_heatmap_net

    _, _, path = _tiny_u(tmp_path / "u.safetensors")
    assert isinstance(load_heatmap_net(path), HeatmapNet)
    junk = tmp_path / "junk.safetensors"
    junk.write_text("{}")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_heatmap_net(junk)


def test_provenance_names_the_hash_and_catches_changes(tmp_path):
    _, _, path = _tiny_u(tmp_path / "u.safetensors")
    record_path = write_provenance(path, **FIELDS)
    record = json.loads(record_path.read_text())
    assert record["sha256"] == sha256_of(path) and record["file"] == "u.safetensors"
    assert verify_file(path)["sha256"] == record["sha256"]
    with path.open("r+b") as handle:  # flip one byte of a weight
        handle.seek(-3, 2)
        byte = handle.read(1)
        handle.seek(-3, 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelHashError, match="differs from its provenance"):
        verify_file(path)
    with pytest.raises(ValueError, match="lacks steps"):
        write_provenance(path, **{k: v for k, v in FIELDS.items() if k != "steps"})


def test_shipped_models_load_and_verify(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(SHIPPED, "u-test", ShippedModel("u-test", "heatmap", "u.safetensors"))
    with pytest.raises(ModelFileError, match="not in this installation"):
        load_shipped("u-test")
    _, _, path = _tiny_u(tmp_path / "u.safetensors")
    write_provenance(path, **FIELDS)
    assert load_shipped("u-test").image_size == 32
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelHashError):
        load_shipped("u-test")
    with pytest.raises(ModelFileError, match="no shipped model 'nope'"):
        load_shipped("nope")


def test_every_shipped_model_provenance_names_its_files_hash():
    present = [m for m in SHIPPED.values() if m.path.is_file()]
    for model in present:
        record = read_provenance(model.path)
        assert record["sha256"] == sha256_of(model.path), model.name
        assert record["file"] == model.file
        for key in ("data", "steps", "seconds", "machine", "git_commit", "image_size"):
            assert key in record, (model.name, key)
        assert image_size_of(load_shipped(model.name)) == record["image_size"]


def test_sizes_are_exposed_and_mismatches_refused(tmp_path):
    camera = make_camera("defocus", 32)
    lens = save_lens(camera, tmp_path / "lens.safetensors")
    assert image_size_of(load_model(lens, "lens")) == 32
    _, _, path = _tiny_u(tmp_path / "u.safetensors", size=64)
    u = load_model(path, "heatmap")
    assert image_size_of(u) == 64
    assert check_same_size(heatmap=64, generator=None, lens=64) == 64
    with pytest.raises(ModelSizeError, match="heatmap at 64 px, generator at 128 px"):
        check_same_size(heatmap=u.image_size, generator=128)
    with pytest.raises(ModelFileError, match="unknown model kind"):
        load_model(path, "teapot")


def test_register_adds_an_entry(monkeypatch):
    monkeypatch.setattr(registry, "SHIPPED", dict(SHIPPED))
    entry = register(ShippedModel("g", "generator", "generator_64.safetensors"))
    assert registry.shipped("g") is entry and "g" not in SHIPPED


def test_shipped_generator_resolves_only_behind_its_own_lens_and_u(tmp_path, monkeypatch):
    import shutil

    from privlens.anonymize.models import resolve_models
    from privlens.anonymize.pipeline import AnonymizeError

    for name in ("lens", "heatmap"):
        model = SHIPPED[name]
        shutil.copy(model.path, tmp_path / model.file)
        shutil.copy(model.provenance_path, tmp_path / model.provenance_path.name)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(AnonymizeError, match="generator.*not in this installation"):
        resolve_models(None, None, None, "shipped")
    generator = tmp_path / "generator_64.safetensors"
    generator.write_bytes(b"a generator bundle stand-in")
    behind = {k: {"sha256": read_provenance(SHIPPED[k].path)["sha256"]} for k in ("lens", "heatmap")}
    write_provenance(generator, **(FIELDS | {"kind": "generator"}), **behind)
    models = resolve_models(None, None, None, "shipped")
    assert models.generator == generator and models.backend == "gan"
    assert resolve_models(None, None, None, None).generator is None  # the default stays warp
    with pytest.raises(AnonymizeError, match="behind the shipped lens and U"):
        resolve_models(None, "defocus", None, "shipped")
    write_provenance(
        generator, **(FIELDS | {"kind": "generator"}), lens={"sha256": "0" * 64}, heatmap=behind["heatmap"]
    )
    with pytest.raises(AnonymizeError, match="lens .* not among the shipped"):
        resolve_models(None, None, None, "shipped")
