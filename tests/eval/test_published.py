"""The paper's transcribed tables and the side-by-side comparison with privlens figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from privlens.eval.published import (
    TABLE_2,
    TABLE_3,
    TABLES,
    paper_value,
    protocol_differences,
    published_markdown,
    side_by_side,
)

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_20d8cedfe9056d5f.txt"


def test_four_tables_with_settings():
    assert [t.number for t in TABLES] == [1, 2, 3, 4]
    assert all(t.setting and t.rows for t in TABLES)
    assert len(TABLES[0].rows) == 5  # the five ablation settings


def test_paper_values_by_privlens_column():
    assert paper_value("DIS FR (dlib)") == 0.734
    assert paper_value("DIS FaceNet-VGGFace2", "Ours-LR") == 1.294
    assert paper_value("LM dlib") == 2.716
    assert paper_value("Box MTCNN", "Ours-LR") == 5.358
    assert paper_value("Detection dlib") == 0.991
    assert paper_value("not a column") is None


def test_protocol_match_needs_dataset_and_size():
    assert protocol_differences("CelebA-HQ", 256) == []
    assert protocol_differences("celeba_hq", 256) == []
    assert len(protocol_differences("lfw", 64)) == 2
    assert protocol_differences("CelebA-HQ", 64) == ["64 px (paper: 256 px)"]


def test_side_by_side_scales_pixels_and_fractions():
    rows = side_by_side(
        [{"method": "demo", "DIS FR (dlib)": 0.7, "LM dlib": 1.0, "Detection dlib": 50.0, "pairs": 3}],
        "faces",
        64,
    )
    by_metric = {r["metric (paper column)"]: r for r in rows}
    assert set(by_metric) == {"DIS FR", "LM Dlib", "FD Dlib"}
    assert by_metric["LM Dlib"]["ours @256 px"] == pytest.approx(4.0)
    assert by_metric["DIS FR"]["ours @256 px"] is None
    assert by_metric["FD Dlib"]["ours"] == pytest.approx(0.5)
    assert by_metric["DIS FR"]["paper Ours"] == 0.734
    assert all(r["comparable"].startswith("not comparable") for r in rows)
    matched = side_by_side([{"method": "m", "DIS FR (dlib)": 0.7}], "CelebA-HQ", 256)
    assert matched[0]["comparable"] == "protocol matches"


def test_markdown_lists_every_table():
    text = published_markdown()
    for number in (1, 2, 3, 4):
        assert f"## Table {number}." in text
    assert "29.218" in text and "0.792" in text


@pytest.mark.skipif(not SEED.is_file(), reason="the paper's text is not beside this checkout")
def test_transcription_matches_the_paper_text():
    """Every figure of Tables 2 and 3 occurs in the paper's text (an independent check of the typing)."""
    text = SEED.read_text(encoding="utf-8", errors="replace")
    numbers = set(re.findall(r"\d+\.\d{3}", text))
    for table in (TABLE_2, TABLE_3):
        for row in table.rows:
            for key, value in row.items():
                if key != "method":
                    assert f"{value:.3f}" in numbers, (table.number, row["method"], key)
