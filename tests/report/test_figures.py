"""Lens figures crop the PSF to where the light is and show a large-pixel sensor's grid; the demo
report states the N behind its figures and the measured training time."""

from __future__ import annotations

import json

import torch
from PIL import Image

from privlens.optics.presets import make_camera
from privlens.report.demo_report import build_page, mechanics_note
from privlens.report.figures import plot_lens, psf_light_radius, psf_support_radius


def test_crop_follows_the_visible_light_not_the_faint_tail():
    psf = torch.full((3, 101, 101), 2e-3)  # a faint floor (0.2 % of the peak) with 45 % of the energy
    psf[:, 48:53, 48:53] = 1.0
    psf = psf / psf.sum(dim=(-2, -1), keepdim=True)
    assert psf_light_radius(psf) <= 6
    assert psf_support_radius(psf) >= 40  # the energy rule would show a tiny blob in a wide field


def test_lowres_figure_has_the_pixel_grid_panel(tmp_path):
    open_lens = plot_lens(make_camera("open", 64), tmp_path / "open.png")
    lowres = plot_lens(make_camera("lowres", 64), tmp_path / "lowres.png")
    with Image.open(open_lens) as a, Image.open(lowres) as b:
        assert b.size[0] > a.size[0] * 1.15  # one more panel: the point on the large-pixel sensor


def test_report_states_n_and_measured_seconds(tmp_path):
    (tmp_path / "summary.json").write_text(
        json.dumps({"seconds": {"stage I": 123.4}, "stage1": {"heatmap": {"steps": 600}}})
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "landmarks.csv").write_text("file,split\na,train\nb,train\nc,val\n")
    evaluation = tmp_path / "evaluation"
    (evaluation / "pairs").mkdir(parents=True)
    row = {"method": "learned", "pairs": 24, "DIS FR (dlib)": 0.71}
    (evaluation / "evaluation.json").write_text(json.dumps({"rows": [row], "protocol": {"sources": 8}}))
    (evaluation / "pairs" / "learned.md").write_text(
        "table\n\nPair metrics average the pairs where both sides have a face "
        "(DIS FR (dlib) n=3, LM dlib n=3).\n"
    )
    page = build_page(tmp_path)
    assert any("0.71 over 3 of 24 pairs" in point for point in page.key_points)
    note = mechanics_note(json.loads((tmp_path / "summary.json").read_text()), {"train": 2})
    assert "123 s" in note and "600 Stage I steps" in note and "2 embedded faces" in note
    assert "a minute" not in note
