"""The self-contained HTML page: parses, embeds every figure, references no external URL."""

from html.parser import HTMLParser

import numpy as np
from PIL import Image

from privlens.report.html import Figure, Page, Section, Table, render


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources, self.links, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if key in attrs and attrs[key] and not attrs[key].startswith("data:"):
                self.links.append(attrs[key])


def test_page_embeds_figures_and_escapes_text(tmp_path):
    figure = tmp_path / "f.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(figure)
    page = Page(
        "t <script>",
        "sub",
        ["point"],
        [
            Section(
                "s",
                ["a & b"],
                ["note"],
                [Table([{"x": 1.23456, "y": float("nan")}])],
                [Figure(figure, "cap")],
            )
        ],
    )
    text = render(page)
    parser = Collector()
    parser.feed(text)
    assert parser.sources and all(s.startswith("data:image/png;base64,") for s in parser.sources)
    assert parser.links == []
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "a &amp; b" in text and "1.235" in text and "n/a" in text
    assert "http" not in text


def test_page_fits_a_phone_viewport():
    rows = [{f"column {i}": 1.0 for i in range(20)}]
    text = render(Page("t", sections=[Section("s", tables=[Table(rows, "N = 3")])]))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert '<p class="tcap">N = 3</p><div class="scroll"><table>' in text  # wide tables scroll
    assert ".scroll { overflow-x: auto;" in text and "@media (max-width: 600px)" in text
