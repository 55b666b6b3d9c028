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


def test_report_shows_the_generator_figures_beside_the_warp_baseline(tmp_path):
    check = {
        "n_sources": 20,
        "n_pairs": 19,
        "analysis_px": 160,
        "detected": 0.9,
        "identity": 0.8,
        "geometry": 1.1,
        "reference_l1": 0.2,
        "passes": {"detected": True, "identity": False, "geometry": False, "reference_l1": True},
    }
    warp = dict(check, identity=1.0, geometry=0.88, passes=dict(check["passes"], identity=True))
    record = {"steps": 1200, "seconds": 7200.0, "heldout_check": check, "warp_baseline": warp}
    (tmp_path / "shipped-lens").mkdir()
    (tmp_path / "shipped-lens" / "provenance.json").write_text(json.dumps({"generator": record}))
    page = build_page(tmp_path)
    [section] = [s for s in page.sections if s.title == "Stage II generator on held-out faces"]
    rows = {row["figure"]: row for row in section.tables[0].rows}
    identity = rows["identity distance to the source > 0.6"]
    assert identity["generator"] == "0.80 (not met)" and identity["warp backend"] == "1.00 (met)"
    assert "N = 20 held-out faces (19 with" in section.tables[0].caption
    (tmp_path / "shipped-lens" / "provenance.json").write_text(json.dumps({"lens": {"steps": 1}}))
    assert not any(s.title == "Stage II generator on held-out faces" for s in build_page(tmp_path).sections)
