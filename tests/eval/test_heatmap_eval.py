"""eval.heatmap: the NME metric, the two mean-shape baselines, and `privlens eval heatmap`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from privlens.cli import app
from privlens.data.images import save_image
from privlens.eval.heatmap import evaluate_heatmap, inter_ocular_nme, render_heatmap_report, spread
from privlens.faces.heatmaps import render_heatmaps
from privlens.models import save_heatmap_net
from privlens.nets import HeatmapNet


def _faces(n: int = 6, size: int = 64, seed: int = 0) -> np.ndarray:
    """``[n, 68, 2]`` landmark sets: one template face shifted and scaled per face."""
    rng = np.random.default_rng(seed)
    template = rng.uniform(16, 48, (68, 2))
    template[36], template[45] = (20, 26), (44, 26)  # outer eye corners 24 px apart
    shifts = rng.uniform(-5, 5, (n, 1, 2))
    scales = rng.uniform(0.85, 1.15, (n, 1, 1))
    return (template - 32) * scales + 32 + shifts


class _Oracle(nn.Module):
    """Outputs the true Gaussians of the faces it was built with (or one fixed face for all)."""

    num_landmarks = 68

    def __init__(self, landmarks: np.ndarray, size: int, fixed: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        points = torch.as_tensor(landmarks, dtype=torch.float32)
        if fixed:
            points = points[:1].expand_as(points)
        self.maps = render_heatmaps(points, size, size // 4, 1.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.maps[: len(images)] + 0 * self.weight


def test_inter_ocular_nme_by_hand():
    truth = np.zeros((1, 68, 2))
    truth[0, 45] = (10.0, 0.0)  # inter-ocular distance 10
    predicted = truth + np.array([3.0, 4.0])  # every point 5 px off
    assert inter_ocular_nme(predicted, truth) == pytest.approx([0.5])
    assert inter_ocular_nme(truth[0], truth) == pytest.approx([0.0])  # a shape broadcasts
    with pytest.raises(ValueError, match=r"\[N, 68, 2\]"):
        inter_ocular_nme(truth[0], truth[0])


def test_perfect_u_beats_both_baselines_and_a_constant_u_has_no_spread():
    truth = _faces()
    images = torch.rand(len(truth), 3, 64, 64)
    report = evaluate_heatmap(_Oracle(truth, 64), images, truth, truth.mean(0) + 3.0)
    row = report.rows[0]
    assert row.n == 6 and row.condition == "clean"
    assert row.nme_u < 0.02 and row.nme_own_mean > 0.1
    assert row.nme_train_mean > row.nme_own_mean  # the shifted mean is worse than the oracle
    assert row.spread_ratio == pytest.approx(1.0, abs=0.05)
    constant = evaluate_heatmap(_Oracle(truth, 64, fixed=True), images, truth).rows[0]
    assert constant.spread_ratio < 0.01 and constant.nme_train_mean is None
    assert spread(truth) > 2.0


def test_lens_row_and_rendering():
    truth = _faces(4)
    from privlens.optics.presets import make_camera

    report = evaluate_heatmap(
        _Oracle(truth, 64), torch.rand(4, 3, 64, 64), truth, None, make_camera("defocus", 64)
    )
    assert [r.condition for r in report.rows] == ["clean", "lens"]
    md = render_heatmap_report(report, "md")
    assert "| clean | 4 |" in md and "| lens | 4 |" in md and "n/a" in md
    data = json.loads(render_heatmap_report(report, "json"))
    assert data["rows"][1]["n"] == 4 and data["rows"][0]["ratio_train_mean"] is None
    with pytest.raises(ValueError, match="format"):
        render_heatmap_report(report, "csv")


def test_the_sensor_row_reads_seeded_noisy_captures():
    """'lens+sensor' is U on the sensor's readout: at 2 e- per sensor pixel it differs from the
    noise-free row, the same seeds give the same figure and other seeds another."""
    from privlens.optics.presets import make_camera

    torch.manual_seed(0)
    net, truth = HeatmapNet(width=8, depth=1).eval(), _faces(4)
    images = torch.rand(4, 3, 64, 64)
    camera = make_camera("defocus", 64, full_scale_e=2.0)

    def row(seeds):
        report = evaluate_heatmap(net, images, truth, None, camera, noise_seeds=seeds)
        assert [r.condition for r in report.rows] == ["clean", "lens", "lens+sensor"]
        return report.rows[1].nme_u, report.rows[2].nme_u

    (optical, noisy), (_, again), (_, other) = row([0, 1]), row([0, 1]), row([5, 6])
    assert noisy == again and noisy != other and abs(noisy - optical) > 1e-4


@pytest.fixture
def prepared(tmp_path):
    """A prepared-folder layout written by hand: 6 val faces (32 px PNGs), landmarks.csv."""
    root = tmp_path / "data"
    truth = _faces(6, size=64) / 2  # the PNGs are 32 px; U runs at 64
    root.mkdir()
    with (root / "landmarks.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "split", "source"] + [f"{a}{k}" for k in range(68) for a in "xy"])
        for i, points in enumerate(truth):
            save_image(torch.rand(3, 32, 32), root / "val" / f"f{i}.png")
            writer.writerow([f"val/f{i}.png", "val", f"f{i}.png", *points.flatten().round(3)])
    return root


def test_eval_heatmap_command(prepared, tmp_path):
    torch.manual_seed(0)
    u = save_heatmap_net(
        HeatmapNet(width=8, depth=1),
        tmp_path / "u.safetensors",
        image_size=64,
        mean_shape=np.full((68, 2), 32.0),
    )
    out = tmp_path / "report.json"
    args = ["eval", "heatmap", "--heatmap", str(u), "--data", str(prepared), "--lens", "defocus"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "resized to U's 64 px" in result.output and "| lens | 6 |" in result.output
    assert "| lens+sensor | 6 |" in result.output and "seeds 0..2" in result.output
    data = json.loads(out.read_text())
    assert [r["n"] for r in data["rows"]] == [6, 6, 6]
    quiet = CliRunner().invoke(app, [*args, "--no-sensor-noise"])
    assert quiet.exit_code == 0 and "lens+sensor" not in quiet.output
    refused = CliRunner().invoke(app, [*args, "--draws", "0"])
    assert refused.exit_code == 2 and "--draws" in refused.output
    assert data["rows"][0]["nme_train_mean"] is not None
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "r.txt")])
    assert bad.exit_code == 2 and "--out must end in" in bad.output
    missing = CliRunner().invoke(
        app, ["eval", "heatmap", "--heatmap", str(tmp_path / "nope"), "--data", str(prepared)]
    )
    assert missing.exit_code == 2 and "no such file" in missing.output
    empty = CliRunner().invoke(
        app, ["eval", "heatmap", "--heatmap", str(u), "--data", str(prepared), "--split", "train"]
    )
    assert empty.exit_code == 2 and "no faces" in empty.output


def test_landmark_rank1_is_the_leak_of_u_s_landmarks():
    """A U that reads every face's own landmarks singles out every photo; one that predicts the
    same face for all identifies at most the one photo nearest to it (chance 1/N)."""
    rng = np.random.default_rng(4)
    truth = _faces(6) + rng.normal(0.0, 1.5, (6, 68, 2))  # six different shapes
    images = torch.rand(6, 3, 64, 64)
    perfect = evaluate_heatmap(_Oracle(truth, 64), images, truth).rows[0]
    assert perfect.landmark_rank1 == 1.0 and perfect.chance_rank1 == pytest.approx(1 / 6)
    assert perfect.landmark_rank1_lo == perfect.landmark_rank1_hi == 1.0
    constant = evaluate_heatmap(_Oracle(truth, 64, fixed=True), images, truth).rows[0]
    assert constant.landmark_rank1 <= 1 / 6
    md = render_heatmap_report(evaluate_heatmap(_Oracle(truth, 64), images, truth), "md")
    assert "rank-1 from U's landmarks" in md and "| 1.000 [1.000, 1.000] | 0.167 |" in md
    single = evaluate_heatmap(_Oracle(truth[:1], 64), images[:1], truth[:1]).rows[0]
    assert single.landmark_rank1 is None and "n/a" in render_heatmap_report(
        evaluate_heatmap(_Oracle(truth[:1], 64), images[:1], truth[:1]), "md"
    )
