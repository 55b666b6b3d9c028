"""Short Stage I runs on the embedded faces at 64 px (tiny network, a few dozen steps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from privlens.cli import app
from privlens.optics.lensfile import read_lens
from privlens.optics.presets import make_camera
from privlens.train.checkpoint import load_heatmap_net
from privlens.train.config import load_config
from privlens.train.stage1 import run_stage1
from privlens.train.stage1_config import Stage1Config


def test_heatmap_pretraining_lowers_heldout_loss_and_nme(pretrained_run):
    s = pretrained_run.summary
    assert s["mode"] == "heatmap" and s["steps"] == 40
    # U trains on the MSE/coordinate loss; the L1 stays a held-out diagnostic and falls too.
    assert s["val_end"]["heatmap_l1"] < 0.8 * s["val_start"]["heatmap_l1"]
    assert s["val_end"]["nme"] < 0.5 * s["val_start"]["nme"]
    assert s["val_start"]["distortion"] == 0.0  # clean scenes, no camera
    net = load_heatmap_net(pretrained_run.files["net"])
    assert net.arch["width"] == 32 and net.arch["depth"] == 4


def test_optics_run_from_cli(one_thread, faces64, pretrained_run, tiny_path, tmp_path):
    """The paper's Stage I from the pretrained U: distortion rises, the held-out heatmap loss
    falls below its start, beta moves (frozen terms stay), gradients stay finite."""
    out = tmp_path / "optics"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "optics",
            "--config",
            str(tiny_path),
            "--data",
            str(faces64),
            "--out",
            str(out),
            "train.progress=false",
            f"net.pretrained={pretrained_run.files['net']}",
        ],
    )
    assert result.exit_code == 0, result.output
    s = json.loads((out / "summary.json").read_text())
    assert s["skipped_nonfinite_steps"] == 0
    # U starts from the pretrained weights: its held-out loss on open-lens captures matches.
    assert s["val_start"]["heatmap_l1"] == pytest.approx(
        pretrained_run.summary["val_end"]["heatmap_l1"], rel=0.05
    )
    assert s["val_end"]["distortion"] > 20 * s["val_start"]["distortion"]
    assert s["val_end"]["distortion"] > 0.005
    assert s["val_end"]["heatmap_l1"] < s["val_start"]["heatmap_l1"]
    beta = torch.tensor(s["beta_end_um"])
    assert torch.all(beta[:3] == 0)  # piston, tip, tilt frozen
    assert beta[3:].abs().max() > 0.05
    assert all(torch.isfinite(beta))
    # Outputs: lens file for `privlens capture --lens`, U weights, resolved config, TensorBoard.
    coeffs, camera_config, provenance = read_lens(out / "lens.safetensors")
    assert torch.allclose(coeffs, beta) and provenance["mode"] == "optics"
    camera = make_camera(out / "lens.safetensors", 64)
    assert torch.allclose(camera.coeffs_um.detach(), beta)
    load_heatmap_net(out / "heatmap_net.safetensors")
    resolved = load_config(Stage1Config, out / "config.yaml")
    assert resolved.net.pretrained == str(pretrained_run.files["net"])
    assert list((out / "tb").glob("events.out.tfevents.*"))
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "val"} == {line["kind"] for line in lines}
    shot = tmp_path / "shots"
    capture = CliRunner().invoke(
        app,
        [
            "capture",
            str(faces64 / "val"),
            "--lens",
            str(out / "lens.safetensors"),
            "--out",
            str(shot),
            "--size",
            "64",
        ],
    )
    assert capture.exit_code == 0, capture.output
    assert list(shot.rglob("*.png"))


def test_lowres_baseline_trains_only_u(one_thread, faces64, pretrained_run, tiny_config, tmp_path):
    config = tiny_config(
        faces64, "train.steps=8", "train.val_every=8", f"net.pretrained={pretrained_run.files['net']}"
    )
    s = run_stage1("lowres", config, tmp_path, resume=False).summary
    assert s["beta_end_um"] == [0.0] * 15
    assert s["val_start"]["distortion"] > 1e-3  # 16 x 16 large pixels
    assert s["val_end"]["distortion"] == pytest.approx(s["val_start"]["distortion"])
    assert s["last_train_losses"]["optics"] == 0.0
    _, camera_config, _ = read_lens(tmp_path / "lens.safetensors")
    assert camera_config.lowres_size == 16
    net_before = load_heatmap_net(pretrained_run.files["net"]).state_dict()
    net_after = load_heatmap_net(tmp_path / "heatmap_net.safetensors").state_dict()
    assert any(not torch.equal(net_before[k], net_after[k]) for k in net_before)


def test_resume_after_interruption_equals_uninterrupted(one_thread, faces64, tiny_config, tmp_path):
    overrides = (
        "train.steps=6",
        "train.checkpoint_every=2",
        "train.val_every=3",
        "net.width=16",
        "camera.noise_sigma=0.01",
    )
    whole, resumed, a = _whole_and_resumed(tiny_config(faces64, *overrides), tmp_path)
    assert resumed.summary["resumed_from"] == 2
    assert any(k.startswith("optim/camera/") for k in a)
    assert whole.summary["val_end"] == resumed.summary["val_end"]
    assert whole.summary["beta_end_um"] == resumed.summary["beta_end_um"]


def _whole_and_resumed(config, tmp_path):
    """An optics run straight through, and the same run killed after 3 steps and resumed: both
    results and the whole run's checkpoint tensors, checked equal to the resumed run's."""
    whole = run_stage1("optics", config, tmp_path / "whole", resume=False)
    cut = tmp_path / "cut"
    stopped = run_stage1("optics", config, cut, resume=False, stop_after=3)
    assert stopped.summary == {"stopped_at": 3}
    assert not (cut / "summary.json").exists()
    resumed = run_stage1("optics", config, cut, resume=True)
    a = load_file(str(tmp_path / "whole" / "checkpoint.safetensors"))
    b = load_file(str(cut / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    return whole, resumed, a


def test_mirror_limit_and_resume_refusing_a_changed_config(one_thread, faces64, tiny_config, tmp_path):
    from privlens.train.config import ConfigError

    config = tiny_config(faces64, "train.steps=2", "net.width=16", "camera.mirror_limit_um=0.03")
    beta = torch.tensor(run_stage1("optics", config, tmp_path, resume=False).summary["beta_end_um"])
    assert beta.abs().max() <= 0.03 + 1e-7
    assert beta[3:].abs().max() == pytest.approx(0.03)  # lr 0.05 pushes terms to the limit
    changed = tiny_config(
        faces64, "train.steps=4", "net.width=16", "camera.mirror_limit_um=0.03", "loss.alpha1=3"
    )
    with pytest.raises(ConfigError, match="loss.alpha1"):
        run_stage1("optics", changed, tmp_path)


@pytest.mark.slow
def test_ddp_two_gloo_processes_stay_in_sync(faces64, tiny_path, tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "privlens.cli",
        "train",
        "optics",
        "--config",
        str(tiny_path),
        "--data",
        str(faces64),
        "--out",
        str(out),
        "train.steps=4",
        "train.progress=false",
        "net.width=16",
        "train.batch_size=4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["world_size"] == 2
    assert s["ddp"]["world_size"] == 2
    assert s["ddp"]["max_beta_diff"] == 0.0
    assert s["ddp"]["max_net_diff"] == 0.0
    assert torch.tensor(s["beta_end_um"])[3:].abs().max() > 0.01


def _moved_heldout_faces(data, seed: int = 1):
    """The held-out faces, each moved by a fixed random similarity (10 deg, 10 % scale, 6 % shift,
    inside the training augmentation's range): framed differently from one another, as crops of
    ordinary photos are, so that one average face cannot score well."""
    from privlens.data.transforms import random_similarity, similarity_warp
    from privlens.train.data import LandmarkFaces

    faces = LandmarkFaces(data, "val", 64)
    generator = torch.Generator().manual_seed(seed)
    moved = [
        similarity_warp(
            faces[i]["image"], faces[i]["landmarks"], *random_similarity(64, 10, 0.1, 0.06, generator)
        )
        for i in range(len(faces))
    ]
    return torch.stack([m[0] for m in moved]), torch.stack([m[1] for m in moved])


LEARNING_OVERRIDES = (
    "train.steps=400",
    "net.width=16",
    "net.depth=2",
    "net.lr=0.005",
    "train.val_every=1000",
)


def test_u_learns_landmarks_rather_than_one_average_face(one_thread, faces64, tiny_config, tmp_path):
    """A few hundred CPU steps of the tiny recipe: on held-out faces U beats the mean shape of its
    training set and its landmarks move with the faces (the paper's L1 loss gave one shape)."""
    from privlens.eval.heatmap import evaluate_heatmap
    from privlens.models import load_heatmap_model

    extra = os.environ.get("PRIVLENS_TEST_STAGE1_OVERRIDES", "").split()  # e.g. the paper's L1
    run_stage1("heatmap", tiny_config(faces64, *LEARNING_OVERRIDES, *extra), tmp_path, resume=False)
    model = load_heatmap_model(tmp_path / "heatmap_net.safetensors")
    assert model.image_size == 64 and model.mean_shape.shape == (68, 2)
    images, landmarks = _moved_heldout_faces(faces64)
    row = evaluate_heatmap(model.net, images, landmarks, model.mean_shape).rows[0]
    assert row.n >= 5
    # Measured (2-core CPU): this recipe NME 0.157 vs mean shape 0.163, spread 0.27; the paper's L1
    # (PRIVLENS_TEST_STAGE1_OVERRIDES="loss.heatmap=l1 loss.foreground_weight=0 loss.coord_weight=0")
    # NME 0.262, spread 0.04: it fails both assertions.
    assert row.nme_u < row.nme_train_mean, row
    assert row.spread_ratio > 0.15, row


def test_stride_two_u_trains_on_half_resolution_targets_and_its_optics_run_follows_it(
    one_thread, faces64, tiny_config, tmp_path
):
    """net.stride 2: targets rendered at 1/2 of the input, and a run from its weights (stride
    left null) builds the same architecture."""
    small = ("net.width=8", "net.depth=2", "train.steps=3", "train.val_every=3", "train.checkpoint_every=3")
    first = run_stage1("heatmap", tiny_config(faces64, *small, "net.stride=2"), tmp_path / "u", resume=False)
    net = load_heatmap_net(first.files["net"])
    assert net.arch["stride"] == 2 and net.eval()(torch.rand(1, 3, 64, 64)).shape[-1] == 32
    assert 0 < first.summary["val_end"]["nme"] < 10
    pretrained = f"net.pretrained={first.files['net']}"
    second = run_stage1("lowres", tiny_config(faces64, *small, pretrained), tmp_path / "lr", resume=False)
    assert load_heatmap_net(second.files["net"]).arch == net.arch


def test_in_loop_adversary_trains_checkpoints_and_resumes(one_thread, faces64, tiny_config, tmp_path):
    """loss.adversary_weight: an inversion U-Net trains in the loop (its weights and Adam state are
    in the checkpoint, so a killed run resumes to the same lens) and its PSNR is logged."""
    overrides = (
        "loss.objective=robust",
        "loss.robust_weight=0",
        "loss.adversary_weight=3",
        "loss.adversary_width=4",
        "loss.adversary_warmup=2",
        "train.steps=5",
        "train.checkpoint_every=2",
        "train.val_every=5",
        "net.width=16",
    )
    whole, resumed, a = _whole_and_resumed(tiny_config(faces64, *overrides), tmp_path)
    assert any(k.startswith("model/adversary/") for k in a)
    assert any(k.startswith("optim/adversary/") for k in a)
    assert whole.summary["beta_end_um"] == resumed.summary["beta_end_um"]
    rows = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert any("adversary_psnr" in row for row in rows if row["kind"] == "train")


def test_deconvolving_adversary_trains_in_the_loop_and_resumes(one_thread, faces64, tiny_config, tmp_path):
    """loss.adversary_frontend tikhonov: the attacker deconvolves with the lens's PSF first; its
    learned regularisation is in the checkpoint and a killed run resumes to the same lens."""
    overrides = (
        "loss.objective=robust",
        "loss.robust_weight=0",
        "loss.adversary_weight=3",
        "loss.adversary_width=4",
        "loss.adversary_frontend=tikhonov",
        "loss.adversary_warmup=1",
        "train.steps=4",
        "train.checkpoint_every=2",
        "train.val_every=4",
        "net.width=16",
    )
    whole, resumed, a = _whole_and_resumed(tiny_config(faces64, *overrides), tmp_path)
    assert "model/adversary/log10_lambda" in a
    assert whole.summary["beta_end_um"] == resumed.summary["beta_end_um"]


def test_time_box_stops_early_saves_as_at_the_end_and_a_larger_budget_resumes(
    one_thread, faces64, tiny_config, tmp_path
):
    """train.max_seconds: the run stops after the step that crosses it, writes its lens, U and
    summary (steps done, stopped_by), and the same folder without the box runs on to the end."""
    from privlens.optics.lensfile import read_lens

    small = ("net.width=8", "net.depth=2", "train.steps=6", "train.val_every=6", "train.checkpoint_every=6")
    boxed = run_stage1(
        "optics", tiny_config(faces64, *small, "train.max_seconds=0.001"), tmp_path, resume=False
    )
    assert boxed.summary["stopped_by"] == "max_seconds"
    assert boxed.summary["steps"] == 1 and boxed.summary["planned_steps"] == 6
    assert read_lens(tmp_path / "lens.safetensors")[2]["steps"] == 1
    assert boxed.summary["val_end"]["step"] == 1
    rest = run_stage1("optics", tiny_config(faces64, *small), tmp_path, resume=True)
    assert rest.summary["stopped_by"] is None
    assert (rest.summary["resumed_from"], rest.summary["steps"]) == (1, 6)


def test_a_lens_step_that_would_outgrow_the_pupil_sampling_is_pulled_back(one_thread):
    """keep_simulable_: a coma step far past what max_pupil_samples can simulate is halved until
    the mask can be simulated (the result lies on the segment from the old beta), and a step that
    fits stands untouched."""
    from privlens.optics import make_camera
    from privlens.optics.psf import PupilSamplingError
    from privlens.train.stage1 import keep_simulable_

    camera = make_camera("defocus", 64)
    before = camera.coeffs_um.detach().clone()
    with torch.no_grad():
        camera.coeffs_um[6] += 40.0  # Noll 7 (coma): needs far more than 512 pupil samples
    with pytest.raises(PupilSamplingError):
        camera.check_sampling(strict=False)
    pulled = keep_simulable_(camera, before)
    assert 1 <= pulled <= 8
    moved = camera.coeffs_um.detach() - before
    assert float(moved[6]) == pytest.approx(40.0 / 2**pulled)
    assert float(moved.abs().sum() - moved[6].abs()) == 0.0
    camera.check_sampling(strict=False)  # simulable now
    fits = camera.coeffs_um.detach().clone()
    assert keep_simulable_(camera, before) == 0 and torch.equal(camera.coeffs_um.detach(), fits)


def test_stage1_trains_at_the_lens_files_sensor_light_unless_told(tmp_path):
    """camera.full_scale_e null keeps the lens file's light (a stop made at the same exposure
    time collects 1/816 of it); a number overrides it; presets keep 4000 e-."""
    from privlens.optics.lensfile import save_lens
    from privlens.train.stage1 import build_camera

    stop = make_camera("open", 64, aperture_radius_m=0.07e-3, full_scale_e=4.9)
    save_lens(stop, tmp_path / "stop.safetensors", {"preset": "open"})
    base = ["camera.sensor_noise=true", f"camera.init={tmp_path / 'stop.safetensors'}"]
    kept = build_camera("optics", load_config(Stage1Config, None, base))
    assert kept.config.full_scale_e == pytest.approx(4.9)
    assert kept.config.aperture_radius_m == pytest.approx(0.07e-3)
    told = build_camera("optics", load_config(Stage1Config, None, [*base, "camera.full_scale_e=1000"]))
    assert told.config.full_scale_e == 1000
    preset = build_camera("optics", load_config(Stage1Config, None, ["camera.sensor_noise=true"]))
    assert preset.config.full_scale_e == 4000
