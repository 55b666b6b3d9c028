"""Lens files: round trip, safetensors only, clear errors for foreign or corrupt files."""

import json

import pytest
import torch
from safetensors.torch import save_file

from privlens.optics import (
    Camera,
    CameraConfig,
    LensFileError,
    load_lens,
    load_lens_into,
    read_lens,
    save_lens,
)
from privlens.optics.presets import make_camera, prototype_coefficients


def test_round_trip_keeps_coefficients_and_settings(tmp_path):
    camera = Camera(CameraConfig(image_size=64, convolution="circular"), prototype_coefficients())
    path = save_lens(camera, tmp_path / "lens.safetensors", {"run": "test"})
    coeffs, config, provenance = read_lens(path)
    assert torch.equal(coeffs, camera.coeffs_um.detach())
    assert config == camera.config
    assert provenance == {"run": "test"}
    again = load_lens(path)
    assert torch.allclose(again.psf(), camera.psf())
    resized = load_lens(path, image_size=32)
    assert resized.config.image_size == 32
    assert make_camera(path, 64).config.convolution == "circular"


def test_no_temporary_files_left(tmp_path):
    save_lens(Camera(CameraConfig(image_size=32)), tmp_path / "a.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


def test_missing_file(tmp_path):
    with pytest.raises(LensFileError, match="not found"):
        read_lens(tmp_path / "nope.safetensors")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(LensFileError, match="not a readable safetensors"):
        read_lens(path)


def test_other_safetensors_file_is_not_a_lens(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(path), {"format": "pt"})
    with pytest.raises(LensFileError, match="not a privlens lens"):
        read_lens(path)


def test_inconsistent_coefficients(tmp_path):
    path = tmp_path / "short.safetensors"
    metadata = {"format": "privlens-lens", "version": "1", "camera": json.dumps(CameraConfig().to_dict())}
    save_file({"coeffs_um": torch.zeros(7)}, str(path), metadata)
    with pytest.raises(LensFileError, match="15 terms"):
        read_lens(path)


def test_lens_from_a_different_grid_is_refused(tmp_path):
    other = Camera(CameraConfig(grid_size=128, image_size=64), prototype_coefficients())
    path = save_lens(other, tmp_path / "grid128.safetensors")
    camera = Camera(CameraConfig(image_size=64))
    with pytest.raises(LensFileError, match="grid_size: lens file has 128, camera has 256"):
        load_lens_into(camera, path)
    with pytest.raises(LensFileError, match="physical setting"):
        load_lens(path, grid_size=256)


def test_load_into_compatible_camera(tmp_path):
    path = save_lens(
        Camera(CameraConfig(image_size=64), prototype_coefficients()), tmp_path / "p.safetensors"
    )
    camera = Camera(CameraConfig(image_size=128))
    load_lens_into(camera, path)
    assert torch.allclose(camera.coeffs_um.detach(), prototype_coefficients())


def test_a_run_folder_names_its_lens(tmp_path):
    save_lens(Camera(CameraConfig(image_size=32), prototype_coefficients()), tmp_path / "lens.safetensors")
    camera = make_camera(tmp_path, 32)
    assert torch.allclose(camera.coeffs_um.detach(), prototype_coefficients())
    with pytest.raises(LensFileError, match="not found"):
        make_camera(tmp_path / "missing.safetensors", 32)
