"""`privlens demo --fast` end to end, the report it writes, and a look in a real browser."""

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privlens.cli import app


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.external = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("href", "src"):
            value = attrs.get(key)
            if value and not value.startswith("data:"):
                self.external.append(value)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--fast", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "report:" in result.output
    return out


def test_demo_runs_every_step(demo_dir):
    summary = json.loads((demo_dir / "summary.json").read_text())
    lenses = {"open", "defocus", "lowres", "prototype", "learned", "robust", "stop"}
    assert set(summary["psnr_db"]) == lenses
    assert summary["backend"] == "warp" and "generator" in summary["backend_reason"]
    for run in ("shipped-lens", "stage1-lowres"):
        assert (demo_dir / run / "heatmap_net.safetensors").is_file()
    assert not (demo_dir / "stage1-optics").exists()  # the shipped lens is used, not trained
    attacks = json.loads((demo_dir / "attacks" / "attacks.json").read_text())
    assert {row["lens"] for row in attacks["rows"]} == lenses
    evaluation = json.loads((demo_dir / "evaluation" / "evaluation.json").read_text())
    methods = [row["method"] for row in evaluation["rows"]]
    assert methods == ["shipped-lens", "stage1-lowres", "blur", "pixelate"]


def test_demo_uses_the_shipped_models_and_held_out_faces(demo_dir):
    from privlens.models import sha256_of, shipped_provenance

    shipped = demo_dir / "shipped-lens"
    provenance = json.loads((shipped / "provenance.json").read_text())
    assert sha256_of(shipped / "lens.safetensors") == shipped_provenance("lens")["sha256"]
    assert sha256_of(shipped / "heatmap_net.safetensors") == provenance["heatmap"]["sha256"]
    # the demo's faces carry the recipe's names, so its val split is the shipped models' held-out set
    rows = (demo_dir / "data" / "landmarks.csv").read_text().splitlines()
    assert any(line.startswith("val/lfw") and ",val,lfw" in line for line in rows)
    attacks = json.loads((demo_dir / "attacks" / "attacks.json").read_text())
    val = sum(",val," in line for line in rows)
    assert attacks["protocol"]["evaluation_faces"] == min(4, val)
    assert (demo_dir / "anonymized.png").is_file()


def test_report_is_self_contained(demo_dir):
    text = (demo_dir / "report.html").read_text()
    parser = Collector()
    parser.feed(text)
    figures = [
        demo_dir / "comparison.png",
        demo_dir / "anonymized.png",
        *demo_dir.glob("psf/*.png"),
        *demo_dir.glob("attacks/attack_*.png"),
    ]
    assert len(parser.images) == len(figures)  # every figure, embedded
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert parser.external == [] and "http://" not in text and "https://" not in text
    assert "mechanics of the method" in text


def test_report_command_rerenders_and_refuses_missing_folders(demo_dir, tmp_path):
    (demo_dir / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(demo_dir)])
    assert result.exit_code == 0 and (demo_dir / "report.html").is_file()
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")
def test_report_renders_in_headless_chromium(demo_dir, tmp_path):
    shot = demo_dir / "report_screenshot.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,2400",
        f"--screenshot={shot}",
        (demo_dir / "report.html").as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 2400)
        colours = image.convert("RGB").resize((60, 120)).getcolors(60 * 120)
    assert colours is not None and len(colours) > 50  # text and figures, not a blank page


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")
def test_report_fits_a_phone_screen_in_headless_chromium(demo_dir, tmp_path):
    """At 400 px wide nothing is cut at the right edge: wide tables scroll inside their own box."""
    from PIL import Image

    shot = tmp_path / "phone.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=400,12000",
        f"--screenshot={shot}",
        (demo_dir / "report.html").as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    with Image.open(shot) as image:
        assert image.size == (400, 12000)
        pixels = image.convert("L")
        edge = pixels.crop((394, 0, 400, 12000))  # the page's right margin
        body = pixels.crop((0, 0, 394, 12000))
        assert edge.getextrema()[0] >= 240, "content runs past the right edge of a 400 px screen"
        assert body.getextrema()[0] < 100  # text and figures are there


def test_evaluate_command_on_the_demo_runs(demo_dir, tmp_path):
    out = tmp_path / "evaluation"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--run",
            str(demo_dir / "shipped-lens"),
            "--data",
            str(demo_dir / "data"),
            "--out",
            str(out),
            "--references-per-source",
            "2",
            "--max-sources",
            "2",
            "--identity",
            "dlib",
            "--no-fid",
            "--no-baselines",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "evaluation.json").read_text())
    assert [row["method"] for row in payload["rows"]] == ["shipped-lens"]
    assert payload["rows"][0]["pairs"] == 4  # 2 sources x 2 references
    plan = payload["protocol"]["reference_plan"]
    assert all(len(set(refs)) == 2 for refs in plan.values())
    assert "## Table 4." in (out / "published.md").read_text()
    beside = payload["published_for_orientation"]["rows"]
    assert beside and all(row["comparable"].startswith("not comparable") for row in beside)
    missing = CliRunner().invoke(
        app, ["evaluate", "--run", str(tmp_path / "nope"), "--data", str(demo_dir), "--out", str(out)]
    )
    assert missing.exit_code == 2 and "run folder not found" in missing.output


def test_sweep_command(demo_dir, tmp_path):
    out = tmp_path / "sweep"
    result = CliRunner().invoke(
        app,
        [
            "sweep",
            "--data",
            str(demo_dir / "data"),
            "--out",
            str(out),
            "--defocus",
            "0.1,1.0",
            "--lens",
            str(demo_dir / "shipped-lens"),
            "--heatmap",
            str(demo_dir / "shipped-lens" / "heatmap_net.safetensors"),
            "--evaluation-count",
            "3",
            "--attacker-count",
            "6",
            "--no-hybrid",  # rl+inversion has its own tests (tests/attacks) and is slow here
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert [row["lens"] for row in rows] == ["defocus 0.1 um", "defocus 1 um", "shipped-lens"]
    assert any(row["pareto"] for row in rows)
    detail = json.loads((out / "sweep_attacks.json").read_text())["rows"]
    # every lens is also attacked by its U's landmarks, which may be its strongest attack
    assert {r["lens"] for r in detail if r["attack"] == "landmarks"} == {row["lens"] for row in rows}
    assert (out / "sweep.png").is_file() and (out / "sweep.csv").is_file()
    empty = CliRunner().invoke(app, ["sweep", "--data", str(demo_dir / "data"), "--out", str(out)])
    assert empty.exit_code == 2 and "nothing to sweep" in empty.output
    no_u = CliRunner().invoke(
        app, ["sweep", "--data", str(demo_dir / "data"), "--out", str(out), "--defocus", "0.5"]
    )
    assert no_u.exit_code == 2 and "--heatmap" in no_u.output
