"""Stage II training: losses, gradients, the privacy guard on D, EMA, resume, LPIPS rules, CLI."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from privlens.nets import HeatmapNet
from privlens.train import losses_stage2 as L
from privlens.train import stage2
from privlens.train.checkpoint import save_heatmap_net
from privlens.train.config import ConfigError, load_config
from privlens.train.stage2_config import Stage2Config

TINY = Path(__file__).resolve().parents[2] / "configs" / "stage2_tiny.yaml"
SMALL = [  # 32 px and narrow networks keep the tests within seconds on two cores
    "data.image_size=32",
    "model.base_width=8",
    "model.max_width=32",
    "model.mapping_hidden=32",
    "train.batch_size=2",
    "train.progress=false",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on two shared cores, two threads of these tiny convolutions spin
    against other processes and run up to 100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def faces_two_domains(tmp_path_factory) -> Path:
    """16 embedded LFW faces in two domain folders, prepared (dlib landmarks) at 64 px."""
    from privlens.data.images import save_image
    from privlens.data.prepare import prepare_faces
    from privlens.data.samples import lfw_faces

    src = tmp_path_factory.mktemp("s2_src")
    for i, face in enumerate(lfw_faces()[:16]):
        save_image(face, src / ("female" if i % 2 else "male") / f"face{i:03d}.png")
    dst = tmp_path_factory.mktemp("s2_faces")
    prepare_faces(src, dst, size=64, val_fraction=0.0, progress=False)
    return dst


@pytest.fixture(scope="module")
def heatmap_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("s2_u") / "heatmap_net.safetensors"
    return save_heatmap_net(HeatmapNet(width=16, depth=2), path)


@pytest.fixture(scope="module")
def stand_in():
    return L.build_perceptual_loss("alex", substitute="random-backbone")


def small_config(data: Path, heatmap: Path, *overrides: str) -> Stage2Config:
    items = [f"data.root={data}", "stage1.lens=defocus", f"stage1.heatmap_net={heatmap}", *SMALL, *overrides]
    return load_config(Stage2Config, TINY, items)


def build(config: Stage2Config, perceptual=None):
    """Parts, optimisers and a batch of four faces (two sources, two references)."""
    from privlens.train.stage2_data import Stage2Faces

    camera, net, _, _ = stage2.build_frozen(config)
    data = Stage2Faces(config.data.root, config.data.image_size, augment=False)
    torch.manual_seed(0)
    nets = stage2.build_networks(config, len(data.domains), (68, 69))
    ema = {k: __import__("copy").deepcopy(nets[k]).requires_grad_(False) for k in stage2.EMA}
    parts = stage2.Stage2Parts(camera, net, **nets, ema=ema, perceptual=perceptual)
    optimizers = stage2.build_optimizers(parts, config)
    item = lambda i: data.faces[i]  # noqa: E731
    batch = {
        "image": torch.stack([item(0)["image"], item(1)["image"]]),
        "landmarks": torch.stack([item(0)["landmarks"], item(1)["landmarks"]]),
        "domain": torch.tensor([data.labels[0], data.labels[1]]),
        "reference": torch.stack([item(2)["image"], item(3)["image"]]),
        "reference2": torch.stack([item(4)["image"], item(5)["image"]]),
        "target": torch.tensor([0, 1]),
    }
    return parts, optimizers, batch


def test_one_iteration_guards_the_source_and_trains_only_what_it_should(
    faces_two_domains, heatmap_file, stand_in, monkeypatch
):
    """D never receives the source; every loss is finite; each sub-step's optimiser gets the
    gradients of its networks, D none in G steps, the camera and U never any."""
    config = small_config(
        faces_two_domains, heatmap_file, "loss.lambda_lpips=1", "loss.lpips_substitute=random-backbone"
    )
    parts, optimizers, batch = build(config, stand_in)
    seen: list[torch.Tensor] = []
    parts.discriminator.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    camera_before = parts.camera.coeffs_um.detach().clone()
    u_before = {k: v.clone() for k, v in parts.heatmap_net.state_dict().items()}
    record = []
    original = stage2._step

    def snapshot():
        return {
            name: [None if p.grad is None else p.grad.clone() for p in getattr(parts, name).parameters()]
            for name in ("generator", "style_encoder", "mapping", "discriminator")
        }

    def recording(loss, opts, modules, info):
        before = snapshot()
        ok = original(loss, opts, modules, info)
        grads = {
            name: [p.grad for p in getattr(parts, name).parameters()]
            for name in ("generator", "style_encoder", "mapping", "discriminator")
        }
        frozen = [p.grad for p in [*parts.camera.parameters(), *parts.heatmap_net.parameters()]]
        record.append((ok, [type(m).__name__ for m in modules], grads, frozen, before))
        return ok

    monkeypatch.setattr(stage2, "_step", recording)
    out = stage2.train_iteration(parts, optimizers, batch, 0, config)
    source, reference = batch["image"], batch["reference"]
    assert len(seen) == 6  # 2 D steps x (real, fake) + 2 G steps x fake
    for images in seen:
        for image in images:
            assert not any(torch.allclose(image, x, atol=1e-3) for x in source), "D saw a source face"
    assert sum(torch.equal(images, reference) for images in seen) == 2  # the references are D's reals
    values = stage2.scalars(out)
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values()), values
    assert values["g_ref/lpips_random_backbone"] > 0 and "g_ref/lpips" not in values
    assert [r[1] for r in record] == [
        ["Discriminator"],
        ["Discriminator"],
        ["Generator", "MappingNetwork", "StyleEncoder"],
        ["Generator"],
    ]
    for ok, modules, grads, frozen, before in record:
        assert ok and all(g is None for g in frozen)  # camera and U get no gradient
        for name in ("generator", "style_encoder", "mapping", "discriminator"):
            cls = {"generator": "Generator", "style_encoder": "StyleEncoder"}.get(name, name)
            trains = cls in modules or (name == "mapping" and "MappingNetwork" in modules)
            trains = trains or (name == "discriminator" and "Discriminator" in modules)
            got = [g for g in grads[name] if g is not None]
            if trains:
                assert got and all(torch.isfinite(g).all() for g in got)
                assert sum(float(g.abs().sum()) for g in got) > 0
                if name == "generator":  # every layer of G (encoder E included) is reached
                    assert len(got) == len(grads[name])
            elif name == "discriminator":  # D is not differentiated in G steps (it only passes gradients)
                for old, new in zip(before[name], grads[name], strict=True):
                    assert (old is None and new is None) or torch.equal(old, new)
    assert not parts.camera.coeffs_um.requires_grad
    torch.testing.assert_close(parts.camera.coeffs_um, camera_before, rtol=0, atol=0)
    for key, value in parts.heatmap_net.state_dict().items():
        torch.testing.assert_close(value, u_before[key], rtol=0, atol=0)


def test_each_generator_loss_reaches_the_generator(faces_two_domains, heatmap_file, stand_in):
    config = small_config(faces_two_domains, heatmap_file)
    parts, _, batch = build(config)
    capture, heat = stage2.frozen_views(parts, batch["image"])
    style = parts.mapping(torch.randn(2, 16), batch["target"])
    fake = parts.generator(capture, heat, style)
    _, heat_fake = stage2.frozen_views(parts, fake.detach())
    perceptual = stand_in
    terms = {
        "adv": L.g_adversarial(parts.discriminator(fake, batch["target"])),
        "sty": L.style_reconstruction(style, parts.style_encoder(fake, batch["target"])),
        "ds": L.diversity(fake, parts.generator(capture, heat, -style)),
        "cyc": L.cycle(
            capture, parts.generator(fake, heat_fake, parts.style_encoder(capture, batch["domain"]))
        ),
        "expr": L.heatmap_consistency(stage2.camera_heatmaps(parts, fake), heat, 68),
        "lpips_random_backbone": perceptual(batch["reference"], fake).mean(),
    }
    params = list(parts.generator.parameters())
    for name, value in terms.items():
        assert torch.isfinite(value), name
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, name
    assert not any(p.requires_grad for p in perceptual.parameters())


def test_a_few_steps_lower_the_generator_losses_and_move_the_ema(faces_two_domains, heatmap_file):
    config = small_config(faces_two_domains, heatmap_file, "optim.lr=0.002", "optim.ema=0.9")
    parts, optimizers, batch = build(config)
    g0 = {k: v.clone() for k, v in parts.generator.state_dict().items()}
    capture, heat = stage2.frozen_views(parts, batch["image"])
    style = torch.randn(2, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = parts.generator(capture, heat, style)
    history = [stage2.scalars(stage2.train_iteration(parts, optimizers, batch, s, config)) for s in range(6)]

    def generator_terms(v):
        return v["g_latent/cyc"] + v["g_latent/expr"] + v["g_ref/cyc"] + v["g_ref/expr"]

    ratio = generator_terms(history[-1]) / generator_terms(history[0])
    assert ratio < 0.9, history
    with torch.no_grad():
        after = parts.generator(capture, heat, style)
    assert float((after - before).abs().mean()) > 1e-3
    raw = parts.generator.state_dict()
    ema = parts.ema["generator"].state_dict()
    differs = [k for k in raw if not torch.equal(raw[k], ema[k])]
    moved = [k for k in ema if not torch.equal(ema[k], g0[k])]
    assert len(differs) == len(raw) and len(moved) == len(raw)
    # EMA is the running average: strictly between the start and the raw weights on average
    key = "to_rgb.2.weight"
    assert 0 < float((ema[key] - g0[key]).norm()) < float((raw[key] - g0[key]).norm())
    # the diversity weight decays to 0 over ds_iter
    assert L.diversity_weight(0, 1.0, 200) == 1.0 and L.diversity_weight(100, 1.0, 200) == 0.5
    assert L.diversity_weight(500, 1.0, 200) == 0.0


def test_resume_equals_uninterrupted(faces_two_domains, heatmap_file, tmp_path):
    config = small_config(faces_two_domains, heatmap_file, "train.steps=3", "train.checkpoint_every=2")
    whole = stage2.run_stage2(config, tmp_path / "whole", resume=False)
    stopped = stage2.run_stage2(config, tmp_path / "split", resume=False, stop_after=2)
    assert stopped.summary == {"stopped_at": 2}
    resumed = stage2.run_stage2(config, tmp_path / "split", resume=True)
    assert resumed.summary["resumed_from"] == 2
    a = load_file(str(tmp_path / "whole" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoint.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("model/ema_generator/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert whole.summary["last_losses"] == resumed.summary["last_losses"]
    for name in (
        "generator.safetensors",
        "lens.safetensors",
        "heatmap_net.safetensors",
        "config.yaml",
        "summary.json",
    ):
        assert (tmp_path / "split" / name).is_file(), name
    assert list((tmp_path / "split" / "tb").iterdir())
    changed = small_config(faces_two_domains, heatmap_file, "train.steps=6", "optim.lr=0.01")
    with pytest.raises(ConfigError, match="optim.lr"):
        stage2.run_stage2(changed, tmp_path / "split", resume=True)


def test_resume_refuses_a_heatmap_file_changed_since_the_run_began(faces_two_domains, tmp_path):
    """The config names U by path only: replacing the file between two calls must not let the
    run go on behind another U (and a provenance name the new file's hash)."""
    u = tmp_path / "u.safetensors"
    torch.manual_seed(0)
    save_heatmap_net(HeatmapNet(width=16, depth=2), u)
    config = small_config(faces_two_domains, u, "train.steps=2", "train.checkpoint_every=1")
    stage2.run_stage2(config, tmp_path / "run", resume=False, stop_after=1)
    torch.manual_seed(1)
    save_heatmap_net(HeatmapNet(width=16, depth=2), u)  # same path, other weights
    with pytest.raises(ConfigError, match="stage1.heatmap_net: .* not the file this run was trained with"):
        stage2.run_stage2(config, tmp_path / "run", resume=True)
    assert not (tmp_path / "run" / "summary.json").exists()
    # the run's own copy is the U it began with: resuming behind it is fine
    kept = small_config(faces_two_domains, tmp_path / "run" / "heatmap_net.safetensors", "train.steps=2")
    assert stage2.run_stage2(kept, tmp_path / "run", resume=True).summary["resumed_from"] == 1


def test_lpips_offline_refuses_unless_a_substitute_is_named(monkeypatch, tmp_path, stand_in):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("PRIVLENS_LPIPS_BACKBONE", raising=False)
    with pytest.raises(ConfigError) as error:
        L.build_perceptual_loss("alex")
    message = str(error.value)
    assert "loss.lambda_lpips" in message and "lpips_substitute=random-backbone" in message
    assert "loss.lpips_weights" in message
    with pytest.raises(ConfigError, match="not found"):
        L.build_perceptual_loss("alex", weights=str(tmp_path / "absent.pth"))
    assert stand_in.name == "lpips_random_backbone"
    again = L.build_perceptual_loss("alex", substitute="random-backbone")
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(stand_in(x, y), again(x, y))  # seeded: the same stand-in every run


def test_cli_trains_and_refuses_bad_input(faces_two_domains, heatmap_file, tmp_path, monkeypatch):
    from privlens.cli import app
    from privlens.train import load_generator_bundle

    runner = CliRunner()
    out = tmp_path / "gan"
    args = ["train", "gan", "--config", str(TINY), "--data", str(faces_two_domains), "--out", str(out)]
    extra = ["stage1.lens=defocus", f"stage1.heatmap_net={heatmap_file}", "train.steps=2", *SMALL]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    assert "train gan" in result.output
    bundle = load_generator_bundle(out / "generator.safetensors")
    assert bundle.domains == ["female", "male"] and bundle.image_size == 32
    result = runner.invoke(app, [*args[:-2], "--out", str(tmp_path / "none"), *SMALL])
    assert result.exit_code == 2 and "stage1" in result.output and "Traceback" not in result.output
    import torchvision.models._api as api

    monkeypatch.setattr(
        api, "load_state_dict_from_url", lambda *a, **k: (_ for _ in ()).throw(OSError("offline"))
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("PRIVLENS_LPIPS_BACKBONE", raising=False)
    result = runner.invoke(
        app, [*args[:-2], "--out", str(tmp_path / "lp"), *extra, "loss.lambda_lpips=1", "--no-resume"]
    )
    assert result.exit_code == 2 and "lpips_substitute" in result.output


@pytest.mark.parametrize("name", ["stage2_tiny.yaml", "stage2_celebahq.yaml", "stage2_ffhq.yaml"])
def test_configs_load_and_paper_configs_use_the_stargan_v2_settings(name, tmp_path):
    from privlens.train.config import to_yaml

    config = load_config(Stage2Config, TINY.parent / name)
    assert (config.optim.lr, config.optim.mapping_lr, tuple(config.optim.betas)) == (1e-4, 1e-6, (0.0, 0.99))
    assert (config.optim.weight_decay, config.optim.ema) == (1e-4, 0.999)
    assert config.loss.lambda_sty == config.loss.lambda_ds == 1.0
    # the authors' released training where the paper is silent (issue 10)
    assert (config.loss.lambda_cyc, config.loss.lambda_expr) == (7.0, 1000.0)
    assert config.optim.ema_warmup > 0
    if name == "stage2_tiny.yaml":
        assert config.loss.lambda_lpips == 0.0  # runs offline
    else:
        assert (config.data.image_size, config.train.batch_size, config.model.w_hpf) == (256, 8, 1.0)
        assert config.loss.lambda_lpips == 2000.0 and config.loss.ds_iter == config.train.steps
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(config))
    assert load_config(Stage2Config, path) == config
    with pytest.raises(ConfigError, match="loss.lambda_cyc"):
        load_config(Stage2Config, TINY.parent / name, ["loss.lambda_cyc=-1"])


def test_defaults_are_the_authors_and_the_shipped_recipe_is_time_boxed():
    defaults = Stage2Config()
    assert (defaults.loss.lambda_cyc, defaults.loss.lambda_lpips, defaults.loss.lambda_expr) == (
        7.0,
        2000.0,
        1000.0,
    )
    assert (defaults.optim.lr, defaults.optim.mapping_lr) == (1e-4, 1e-6)  # F at 1e-6 as StarGAN v2
    shipped = load_config(Stage2Config, TINY.parent / "shipped" / "stage2_64.yaml")
    assert shipped.data.image_size == 64 and shipped.train.max_seconds and shipped.loss.lambda_lpips == 0
    with pytest.raises(ValueError, match="train.max_seconds"):
        load_config(Stage2Config, TINY, ["train.max_seconds=0"])


def test_stage1_run_folder_is_resolved_and_heatmap_only_runs_refused(tmp_path, heatmap_file):
    from privlens.optics.lensfile import save_lens
    from privlens.optics.presets import make_camera

    run = tmp_path / "optics"
    run.mkdir()
    save_lens(make_camera("defocus", 32), run / "lens.safetensors")
    (run / "heatmap_net.safetensors").write_bytes(heatmap_file.read_bytes())
    config = load_config(Stage2Config, TINY, [f"stage1.run={run}", *SMALL])
    lens, net = stage2.resolve_stage1(config)
    assert (Path(lens), net) == (run / "lens.safetensors", run / "heatmap_net.safetensors")
    camera, u, _, _ = stage2.build_frozen(config)
    assert not any(p.requires_grad for p in [*camera.parameters(), *u.parameters()]) and not u.training
    (run / "lens.safetensors").unlink()  # what a `train heatmap` run looks like
    with pytest.raises(ConfigError, match="has no lens.safetensors"):
        stage2.resolve_stage1(config)
    with pytest.raises(ConfigError, match="stage1"):
        stage2.resolve_stage1(load_config(Stage2Config, TINY, SMALL))


@pytest.mark.slow
def test_ddp_two_gloo_processes_stay_in_sync(faces_two_domains, heatmap_file, tmp_path):
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *("-m", "privlens.cli", "train", "gan", "--config", str(TINY), "--data", str(faces_two_domains)),
        *("--out", str(out), "stage1.lens=defocus", f"stage1.heatmap_net={heatmap_file}", "train.steps=2"),
        *SMALL,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ddp"]["world_size"] == 2
    assert summary["ddp"]["max_generator_diff"] == 0.0  # different data per rank, same weights


def test_ema_warm_up_forgets_the_initial_weights():
    """The EMA decay ramps up (bias-corrected warm-up): after a short run the average holds almost
    none of the initial weights, whereas a plain 0.999 decay keeps 82 % of them after 200 steps."""
    assert stage2.ema_decay(0, 0.999, 10) == pytest.approx(0.1)
    assert stage2.ema_decay(10**6, 0.999, 10) == 0.999 and stage2.ema_decay(5, 0.999, 0) == 0.999
    kept_plain, kept_warm = 1.0, 1.0
    for step in range(200):
        kept_plain *= 0.999
        kept_warm *= stage2.ema_decay(step, 0.999, 10)
    assert kept_plain > 0.8 and kept_warm < 1e-6
    start, target = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    ema = __import__("copy").deepcopy(start)
    for step in range(50):
        stage2.update_ema(ema, target, stage2.ema_decay(step, 0.999, 10))
    torch.testing.assert_close(ema.weight, target.weight, atol=1e-5, rtol=0)


def test_short_run_ships_learned_weights_that_follow_reference_and_latent(
    faces_two_domains, heatmap_file, tmp_path
):
    """A short run: the bundle keeps EMA and raw weights, the EMA is not the initial network,
    and the trained G's output changes with the reference and with the latent z; the time box
    stops a run cleanly with a loadable bundle."""
    from privlens.nets import Generator
    from privlens.train import load_generator_bundle

    config = small_config(faces_two_domains, heatmap_file, "train.steps=6", "optim.lr=0.001")
    result = stage2.run_stage2(config, tmp_path / "run", resume=False)
    ema = load_generator_bundle(tmp_path / "run", weights="ema")
    raw = load_generator_bundle(tmp_path / "run", weights="raw")
    torch.manual_seed(__import__("privlens.train.data", fromlist=["mix_seed"]).mix_seed(0, 0x5EED))
    init = Generator(32, 64, 8, 32).state_dict()  # the run's initial G (same seed, same order)
    key = "to_rgb.2.weight"
    to_raw = float((raw.generator.state_dict()[key] - init[key]).norm())
    to_ema = float((ema.generator.state_dict()[key] - init[key]).norm())
    assert to_raw > 0 and to_ema > 0.5 * to_raw  # a plain 0.999 EMA would sit at 0.6 % of the way
    camera, net, _, _ = stage2.build_frozen(config)
    faces = Stage2FacesForTest(config)
    with torch.no_grad():
        capture = camera(faces[:1].expand(2, -1, -1, -1)).image
        heat = net(capture)
        d = torch.zeros(2, dtype=torch.long)
        by_reference = ema.generator(capture, heat, ema.style_encoder(faces[1:3], d))
        by_latent = ema.generator(capture, heat, ema.mapping(torch.randn(2, 16), d))
    assert float((by_reference[0] - by_reference[1]).abs().mean()) > 0.01
    assert float((by_latent[0] - by_latent[1]).abs().mean()) > 0.01
    assert result.summary["stopped_by"] is None and result.summary["steps"] == 6
    boxed = stage2.run_stage2(
        small_config(faces_two_domains, heatmap_file, "train.steps=50", "train.max_seconds=0.001"),
        tmp_path / "boxed",
        resume=False,
    )
    assert boxed.summary["stopped_by"] == "max_seconds" and boxed.summary["steps"] == 1
    assert load_generator_bundle(tmp_path / "boxed").provenance["steps"] == 1


def Stage2FacesForTest(config: Stage2Config) -> torch.Tensor:  # noqa: N802
    from privlens.train.stage2_data import Stage2Faces

    data = Stage2Faces(config.data.root, config.data.image_size, augment=False)
    return torch.stack([data.faces[i]["image"] for i in range(3)])


def test_shipped_recipe_writes_a_verified_half_precision_bundle(faces_two_domains, heatmap_file, tmp_path):
    from privlens.models import verify_file
    from privlens.optics.lensfile import save_lens
    from privlens.optics.presets import make_camera
    from privlens.train import load_generator_bundle
    from privlens.train.stage2_shipped import main

    lens = save_lens(make_camera("defocus", 32), tmp_path / "lens.safetensors")
    small = [s for s in SMALL if not s.startswith("train.progress")]
    args = ["--data", str(faces_two_domains), "--lens", str(lens), "--heatmap", str(heatmap_file)]
    args += ["--work", str(tmp_path / "gan"), "--weights", str(tmp_path / "w"), "--max-seconds", "60"]
    assert main([*args, "train.steps=1", "data.num_workers=0", *small]) == 0
    record = verify_file(tmp_path / "w" / "generator_64.safetensors")  # hash checked
    assert (
        record["kind"] == "generator"
        and record["steps"] == 1
        and record["lens"]["file"] == "lens.safetensors"
    )
    assert "train.max_seconds=60.0" in record["overrides"]
    from privlens.models import sha256_of

    assert record["heatmap"]["sha256"] == sha256_of(heatmap_file) and record["lens"]["sha256"] == sha256_of(
        lens
    )
    bundle = load_generator_bundle(tmp_path / "w" / "generator_64.safetensors", weights="raw")
    assert bundle.image_size == 32 and bundle.generator.to_rgb[2].weight.dtype == torch.float32
    assert main(["--data", str(tmp_path / "absent"), *args[2:], "train.steps=1"]) == 2


def test_warm_start_loads_a_bundles_weights_and_refuses_another_architecture(
    faces_two_domains, heatmap_file, tmp_path
):
    """``train.init_from``: a new run starts from a bundle's raw (trained copies) and EMA weights
    (averaged copies); a bundle of another width or a non-bundle file is refused by name."""
    from privlens.train.stage2_bundle import load_generator_bundle

    config = small_config(faces_two_domains, heatmap_file, "train.steps=2")
    stage2.run_stage2(config, tmp_path / "first", resume=False)
    bundle = tmp_path / "first" / "generator.safetensors"
    raw, averaged = load_generator_bundle(bundle, weights="raw"), load_generator_bundle(bundle)
    parts, _, _ = build(config)
    nets = {name: getattr(parts, name) for name in stage2.TRAINED}
    fresh = {k: v.clone() for k, v in nets["generator"].state_dict().items()}
    stage2.warm_start(nets, parts.ema, bundle)
    for name in stage2.EMA:
        for mine, theirs in ((nets[name], getattr(raw, name)), (parts.ema[name], getattr(averaged, name))):
            for key, value in theirs.state_dict().items():
                assert torch.equal(mine.state_dict()[key], value.float()), (name, key)
    assert any(not torch.equal(fresh[k], v) for k, v in nets["generator"].state_dict().items())
    wider = small_config(faces_two_domains, heatmap_file, "model.base_width=16")
    wide_parts, _, _ = build(wider)
    wide_nets = {name: getattr(wide_parts, name) for name in stage2.TRAINED}
    with pytest.raises(ConfigError, match="another architecture: generator.*there.*in this config"):
        stage2.warm_start(wide_nets, wide_parts.ema, bundle)
    with pytest.raises(ConfigError, match="train.init_from"):
        stage2.warm_start(nets, parts.ema, heatmap_file)
    warm = small_config(faces_two_domains, heatmap_file, "train.steps=1", f"train.init_from={bundle}")
    assert stage2.run_stage2(warm, tmp_path / "second", resume=False).summary["steps"] == 1


def test_warp_content_generator_trains_on_warped_references_and_refuses_a_cycle(
    faces_two_domains, heatmap_file, tmp_path
):
    """``model.content: warp``: G reads each reference warped onto the landmarks U decodes (the
    iteration's content equals those warps, its output follows them, not the capture); the bundle
    records the content; a cycle term or an unknown content is refused by name."""
    from privlens.train import load_generator_bundle

    warp = ["model.content=warp", "loss.lambda_cyc=0", "loss.lambda_warp=20", "loss.warp_geometry=heatmap"]
    config = small_config(faces_two_domains, heatmap_file, *warp)
    parts, optimizers, batch = build(config)
    batch["reference_landmarks"] = torch.stack([Stage2FacesItems(config)[i]["landmarks"] for i in (2, 3)])
    seen = []
    original = parts.generator.forward
    parts.generator.forward = lambda content, heat, style: (
        seen.append(content) or original(content, heat, style)
    )
    out = stage2.train_iteration(parts, optimizers, batch, 0, config)
    _, heat = stage2.frozen_views(parts, batch["image"])
    warped = stage2.heatmap_warp_targets(batch, heat)
    assert all(torch.equal(content, warped) for content in seen) and len(seen) >= 4
    assert out["g_ref/warp"] >= 0 and out["g_ref/cyc"] == 0
    stage2.run_stage2(
        small_config(faces_two_domains, heatmap_file, *warp, "train.steps=1"), tmp_path / "run", resume=False
    )
    assert load_generator_bundle(tmp_path / "run").generator.content == "warp"
    with pytest.raises(ValueError, match="loss.lambda_cyc"):
        small_config(faces_two_domains, heatmap_file, "model.content=warp", "loss.lambda_cyc=1")
    with pytest.raises(ValueError, match="model.content"):
        small_config(faces_two_domains, heatmap_file, "model.content=mirror")


def Stage2FacesItems(config: Stage2Config):  # noqa: N802
    from privlens.train.stage2_data import Stage2Faces

    return Stage2Faces(config.data.root, config.data.image_size, augment=False).faces


def test_stage1_sensor_noise_sets_whether_the_frozen_camera_stores_noisy_captures(
    faces_two_domains, heatmap_file
):
    """null keeps the lens's own flag (a preset: off); true gives the sensor's readout, as
    `privlens anonymize` captures; false the noise-free optical image even for a noisy lens."""
    grey = torch.full((2, 3, 32, 32), 0.4)

    def captures(*overrides):
        config = small_config(faces_two_domains, heatmap_file, *overrides)
        camera, *_ = stage2.build_frozen(config)
        parts = stage2.Stage2Parts(camera, None, None, None, None, None, ema={})
        first, second = stage2.capture_of(parts, grey), stage2.capture_of(parts, grey)
        return camera.config.sensor_noise, float((first - second).std())

    follows, clean = captures()
    noisy_flag, noisy = captures("stage1.sensor_noise=true")
    off_flag, off = captures("stage1.sensor_noise=false", "stage1.lens=defocus")
    assert (follows, noisy_flag, off_flag) == (False, True, False)
    assert clean == 0.0 and off == 0.0  # the optical image: the same capture every time
    # shot noise at 4000 e- per sensor pixel, 8 x 8 per 32-px capture pixel: std sqrt(0.4 / 256000)
    # = 0.00125 per draw, 0.00177 between two draws (10-bit steps of 0.001 add a little)
    assert 0.0015 < noisy < 0.0022
