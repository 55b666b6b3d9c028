"""CUDA checks (marker ``cuda``; skipped without a GPU): the GPU computes what the CPU computes, and
the fast paths (bf16 autocast, ``torch.compile``) stay close to float32.

Run them with ``pytest -m cuda`` (``benchmarks/gpu.sh`` does, on the lent GPU). Tolerances:

* CPU vs GPU, float32 with TF32 off: camera capture and PSF within 1e-5 absolute (images in
  [0, 1]), the camera's coefficient gradient within 1e-3 relative; Stage I and Stage II losses
  of the first step within 1e-3 relative, and of the second step (after one Adam update each
  side) within 2e-2 relative.
* bf16 autocast vs float32 on the GPU: relative L2 error of U's heatmaps and G's images <= 5e-2
  (bf16 keeps 8 bits of mantissa, about 4e-3 per operation); Stage II losses within 5e-2
  relative or 2e-2 absolute.
* ``torch.compile`` vs eager, float32 with TF32 off: relative L2 error <= 1e-4 for G's images; the
  Stage II losses of one compiled iteration within 1e-3 relative.

``PRIVLENS_CUDA_TESTS_ON_CPU=1`` runs every check with the CPU standing in for the GPU: a dry run
of the code paths and of the bf16 tolerances on a machine without a GPU (the CPU-vs-GPU checks then
compare the CPU with itself and prove nothing).
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from privlens.nets import Generator, HeatmapNet, StyleEncoder
from privlens.optics import Camera, CameraConfig
from privlens.optics.presets import make_camera
from privlens.train import stage1, stage2
from privlens.train.config import load_config
from privlens.train.stage1_config import Stage1Config
from privlens.train.stage2_config import Stage2Config

pytestmark = pytest.mark.cuda

HAS_CUDA = torch.cuda.is_available()
ON_CPU = os.environ.get("PRIVLENS_CUDA_TESTS_ON_CPU") == "1"
GPU = "cuda" if HAS_CUDA else "cpu"  # the CPU stands in only in a dry run (ON_CPU)
needs_gpu = pytest.mark.skipif(not (HAS_CUDA or ON_CPU), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def exact_float32():
    """TF32 off for the comparisons (it is on in the benchmarks); restored afterwards."""
    if not HAS_CUDA:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture
def fast_device() -> torch.device:
    """The device of the bf16 checks: the GPU, or the CPU in a dry run."""
    if HAS_CUDA:
        return torch.device("cuda")
    if ON_CPU:
        return torch.device("cpu")
    pytest.skip("needs a CUDA device (PRIVLENS_CUDA_TESTS_ON_CPU=1 for a CPU dry run)")


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def assert_scalars_close(got: dict[str, float], want: dict[str, float], rtol: float, atol: float) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=rtol, abs=atol), key


# --------------------------------------------------------------------------- camera
@needs_gpu
@pytest.mark.parametrize("mode", ["circular", "linear"])
def test_camera_forward_and_gradient_match_cpu(mode: str) -> None:
    g = torch.Generator().manual_seed(0)
    coeffs = 0.1 * torch.randn(15, generator=g)
    images = torch.rand(2, 3, 64, 64, generator=g)
    results = {}
    for device in ("cpu", GPU):
        camera = Camera(CameraConfig(image_size=64, num_terms=15, convolution=mode), coeffs).to(device)
        capture = camera(images.to(device))
        (capture.image * torch.linspace(0, 1, 64, device=device)).sum().backward()
        results[device] = (
            capture.image.detach().cpu(),
            capture.psf.detach().cpu(),
            camera.coeffs_um.grad.cpu(),
        )
    (image_cpu, psf_cpu, grad_cpu), (image_gpu, psf_gpu, grad_gpu) = results["cpu"], results[GPU]
    assert torch.allclose(image_gpu, image_cpu, atol=1e-5, rtol=0)
    assert torch.allclose(psf_gpu, psf_cpu, atol=1e-5 * float(psf_cpu.max()), rtol=0)
    assert rel_l2(grad_gpu, grad_cpu) < 1e-3


# --------------------------------------------------------------------------- Stage I
def _stage1_setup(device: str, amp: str = "off"):
    overrides = ["data.image_size=64", "net.width=16", "net.depth=2", "train.batch_size=2"]
    overrides += [f"train.amp='{amp}'", f"train.device={device}"]
    config = load_config(Stage1Config, None, overrides)
    torch.manual_seed(0)
    camera = stage1.build_camera("optics", config)
    net = stage1.build_net(config)
    return config, camera, net


def _stage1_losses(config, camera, net, device: str, steps: int = 2) -> list[float]:
    camera, net = copy.deepcopy(camera).to(device), copy.deepcopy(net).to(device)
    model = stage1.Stage1Model(camera, net, stage1._amp_dtype(config, torch.device(device))).train()
    optimizers = {
        "net": torch.optim.Adam(net.parameters(), lr=config.net.lr),
        "camera": torch.optim.Adam([camera.coeffs_um], lr=config.camera.lr),
    }
    reference = camera.defocus_psf(config.loss.defocus_um)
    g = torch.Generator().manual_seed(1)
    scene = torch.rand(2, 3, 64, 64, generator=g).to(device)
    landmarks = (torch.rand(2, 68, 2, generator=g) * 40 + 12).to(device)
    losses = []
    for _ in range(steps):
        out = stage1.train_step(model, camera, optimizers, reference, config, True, scene, landmarks)
        losses.append(float(out.losses.total.detach()))
    return losses


@needs_gpu
def test_stage1_step_matches_cpu() -> None:
    config, camera, net = _stage1_setup("cpu")
    cpu = _stage1_losses(config, camera, net, "cpu")
    gpu = _stage1_losses(config, camera, net, GPU)
    assert gpu[0] == pytest.approx(cpu[0], rel=1e-3)
    assert gpu[1] == pytest.approx(cpu[1], rel=2e-2)


def test_stage1_heatmaps_bf16_close_to_fp32(fast_device: torch.device) -> None:
    torch.manual_seed(0)
    net = HeatmapNet(width=32, depth=2).to(fast_device).eval()
    captures = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(fast_device)
    with torch.no_grad():
        want = net(captures)
        with torch.autocast(fast_device.type, dtype=torch.bfloat16):
            got = net(captures)
    assert rel_l2(got, want) <= 5e-2


# --------------------------------------------------------------------------- Stage II
def _stage2_setup():
    overrides = ["data.image_size=32", "model.base_width=8", "model.max_width=32", "model.mapping_hidden=32"]
    overrides += ["loss.lambda_lpips=0.0", "train.batch_size=2"]
    config = load_config(Stage2Config, None, overrides)
    torch.manual_seed(0)
    camera = make_camera("defocus", 32).eval().requires_grad_(False)
    net = HeatmapNet(width=16, depth=2).eval().requires_grad_(False)
    initial = stage2.build_networks(config, 2, (68, 69))
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(
        torch.rand(6, 3, 8, 8, generator=g), size=(32, 32), mode="bicubic"
    )
    angles = torch.linspace(0, 2 * torch.pi, 69)[:68]
    ring = torch.stack([angles.cos(), angles.sin()], dim=-1) * 32 * 0.3 + 16
    batch = {
        "image": images[:2].clamp(0, 1),
        "landmarks": ring + torch.randn(2, 68, 2, generator=g) * 0.3,
        "domain": torch.tensor([0, 1]),
        "reference": images[2:4].clamp(0, 1),
        "reference2": images[4:].clamp(0, 1),
        "target": torch.tensor([1, 0]),
    }
    return config, camera, net, initial, batch


def _stage2_scalars(setup, device: torch.device, amp: bool = False, compiled: bool = False, steps: int = 1):
    config, camera, net, initial, batch = setup
    nets = {k: copy.deepcopy(v).to(device) for k, v in initial.items()}
    ema = {k: copy.deepcopy(nets[k]).eval().requires_grad_(False) for k in stage2.EMA}
    parts = stage2.Stage2Parts(
        copy.deepcopy(camera).to(device),
        copy.deepcopy(net).to(device),
        **nets,
        ema=ema,
        perceptual=None,
        amp_dtype=torch.bfloat16 if amp else None,
    )
    optimizers = stage2.build_optimizers(parts, config)
    if compiled:
        for name in ("generator", "style_encoder", "mapping"):
            setattr(parts, name, torch.compile(getattr(parts, name)))
    batch = {k: v.to(device) for k, v in batch.items()}
    return [
        stage2.scalars(stage2.train_iteration(parts, optimizers, batch, step, config))
        for step in range(steps)
    ]


@needs_gpu
def test_stage2_iteration_matches_cpu() -> None:
    setup = _stage2_setup()
    cpu = _stage2_scalars(setup, torch.device("cpu"), steps=2)
    gpu = _stage2_scalars(setup, torch.device(GPU), steps=2)
    assert_scalars_close(gpu[0], cpu[0], rtol=1e-3, atol=1e-5)
    assert_scalars_close(gpu[1], cpu[1], rtol=2e-2, atol=1e-3)


def test_stage2_iteration_bf16_close_to_fp32(fast_device: torch.device) -> None:
    setup = _stage2_setup()
    want = _stage2_scalars(setup, fast_device)[0]
    got = _stage2_scalars(setup, fast_device, amp=True)[0]
    assert_scalars_close(got, want, rtol=5e-2, atol=2e-2)


@needs_gpu
def test_stage2_iteration_compiled_matches_eager() -> None:
    setup = _stage2_setup()
    want = _stage2_scalars(setup, torch.device(GPU))[0]
    got = _stage2_scalars(setup, torch.device(GPU), compiled=True)[0]
    assert_scalars_close(got, want, rtol=1e-3, atol=1e-5)


# --------------------------------------------------------------------------- anonymisation
def _anonymize_nets(device: torch.device):
    torch.manual_seed(0)
    u = HeatmapNet(width=16, depth=2).to(device).eval()
    s = StyleEncoder(64, num_domains=2, base_width=16, max_width=64).to(device).eval()
    g = Generator(64, base_width=16, max_width=64).to(device).eval()
    gen = torch.Generator().manual_seed(0)
    captures = torch.rand(4, 3, 64, 64, generator=gen).to(device)
    refs = torch.rand(4, 3, 64, 64, generator=gen).to(device)
    return u, s, g, captures, refs, torch.tensor([0, 1, 0, 1], device=device)


def test_anonymize_bf16_close_to_fp32(fast_device: torch.device) -> None:
    u, s, g, captures, refs, domains = _anonymize_nets(fast_device)
    with torch.no_grad():
        want = g(captures, u(captures), s(refs, domains))
        with torch.autocast(fast_device.type, dtype=torch.bfloat16):
            got = g(captures, u(captures), s(refs, domains))
    assert rel_l2(got, want) <= 5e-2


@needs_gpu
def test_generator_compiled_matches_eager() -> None:
    u, s, g, captures, refs, domains = _anonymize_nets(torch.device(GPU))
    compiled = torch.compile(g)
    with torch.no_grad():
        heatmaps, styles = u(captures), s(refs, domains)
        want = g(captures, heatmaps, styles)
        got = compiled(captures, heatmaps, styles)
    assert rel_l2(got, want) <= 1e-4
