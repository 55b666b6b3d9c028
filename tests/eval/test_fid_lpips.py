import pytest
import torch
from safetensors.torch import save_file

from privlens.eval import MetricUnavailableError, WeightsFileError
from privlens.eval.fid import fid, load_inception
from privlens.eval.perceptual import load_lpips, lpips_distance


def test_fid_offline_is_unavailable_with_the_documented_message(offline):
    with pytest.raises(MetricUnavailableError) as caught:
        load_inception()
    message = str(caught.value)
    assert message.startswith(
        "FID unavailable: no local weights, and the library's cache or download of https://"
    )
    assert "pt_inception-2015-12-05" in message
    assert "--inception-weights" in message and "$PRIVLENS_FID_INCEPTION" in message


def test_fid_with_a_broken_cached_file_is_unavailable(offline):
    cached = offline / "torch-home" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated download")
    with pytest.raises(MetricUnavailableError, match="FID unavailable: no local weights"):
        load_inception()


def test_lpips_offline_is_unavailable_with_the_documented_message(offline):
    with pytest.raises(MetricUnavailableError) as caught:
        load_lpips("alex")
    message = str(caught.value)
    assert message.startswith(
        "LPIPS unavailable: no local weights, and the library's cache or download of https://"
    )
    assert "alexnet" in message and "--lpips-weights" in message and "$PRIVLENS_LPIPS_BACKBONE" in message


def test_lpips_uses_a_local_backbone(tmp_path, offline, astro):
    import torchvision

    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet.safetensors"
    save_file({k: v.contiguous() for k, v in alexnet.state_dict().items()}, str(path))
    model = load_lpips("alex", path)
    assert torch.equal(model.net.slice1[0].weight, alexnet.features[0].weight)
    assert torch.equal(getattr(model.net.slice5, "10").weight, alexnet.features[10].weight)
    image = torch.nn.functional.interpolate(astro[None], size=64, mode="area")[0]
    assert lpips_distance(model, image, image).item() == pytest.approx(0.0, abs=1e-7)
    noisy = (image + 0.2 * torch.randn_like(image)).clamp(0, 1)
    assert lpips_distance(model, image, noisy).item() > 0
    with pytest.raises(WeightsFileError):
        load_lpips("alex", tmp_path / "missing.pth")


def test_fid_uses_local_inception_weights(tmp_path, monkeypatch, offline, lfw):
    """The loading path with a stand-in state dict (random weights): FID of a set against itself is 0."""
    from pytorch_fid import inception

    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: {})
    monkeypatch.setattr(torch.nn.Module, "load_state_dict", lambda self, *a, **k: None)
    torch.manual_seed(0)
    state = inception.fid_inception_v3().state_dict()
    monkeypatch.undo()
    path = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    monkeypatch.setenv("PRIVLENS_FID_INCEPTION", str(path))
    images = list(lfw[:3])
    assert fid(images, images) == pytest.approx(0.0, abs=1e-4)
    assert fid(images, list(lfw[3:6])) > 0
