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
    whole = run_stage1("optics", tiny_config(faces64, *overrides), tmp_path / "whole", resume=False)
    cut = tmp_path / "cut"
    stopped = run_stage1("optics", tiny_config(faces64, *overrides), cut, resume=False, stop_after=3)
    assert stopped.summary == {"stopped_at": 3}
    assert not (cut / "summary.json").exists()
    resumed = run_stage1("optics", tiny_config(faces64, *overrides), cut, resume=True)
    assert resumed.summary["resumed_from"] == 2
    a = load_file(str(tmp_path / "whole" / "checkpoint.safetensors"))
    b = load_file(str(cut / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    assert any(k.startswith("optim/camera/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert whole.summary["val_end"] == resumed.summary["val_end"]
    assert whole.summary["beta_end_um"] == resumed.summary["beta_end_um"]


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
