"""The paper's published figures (Lopez et al., CVPR 2024, Tables 1-4) and a side-by-side view.

The numbers below are transcribed from the paper's text (``shared/seed``; arXiv 2404.00777). Their
setting, as the paper states it (Sec. 4): 256x256 images; Tables 1-3 evaluate on CelebA-HQ (Table 1
trains on CelebA-HQ with StarGAN v2's train/eval split; Tables 2-3 train on FFHQ and evaluate on
CelebA-HQ); Table 4 uses faces captured in the authors' lab with their prototype camera. DIS is the
l2 distance between identity embeddings of original and de-identified faces (higher hides more):
"FR" is the face_recognition library (dlib's 128-d ResNet, as privlens's ``DIS FR (dlib)``), CASIA
and VGGFace2 are FaceNet trained on those sets. Landmarks and boxes are l1 errors between the
original's and the de-identified face's detections (MTCNN, dlib), in pixels of the 256 px images;
FD is the fraction of de-identified faces a detector still finds; each source uses 10 references.
The paper does not state how many test faces each figure rests on.

A privlens figure is comparable with these only when the protocol matches: the same data set, the
same resolution and the same recogniser/detector. :func:`side_by_side` says, per row, which of
those differ, and scales pixel errors to 256 px only as a labelled convenience.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAPER = "Lopez, Hinojosa, Arguello, Ghanem, CVPR 2024 (arXiv 2404.00777)"
PAPER_SIZE_PX = 256
PAPER_DATASET = "CelebA-HQ"


@dataclass(frozen=True)
class PublishedTable:
    """One table of the paper: its number, caption, setting and rows (dicts of column -> value)."""

    number: int
    caption: str
    setting: str
    rows: tuple[dict[str, Any], ...]


def _ablation_row(h: bool, lpips: bool, expr: bool, values: tuple[float, ...]) -> dict[str, Any]:
    names = (
        "DIS FR",
        "DIS CASIA",
        "DIS VGGFace2",
        "LM MtCNN",
        "LM Dlib",
        "BB MtCNN",
        "BB Dlib",
        "FID",
    )
    row: dict[str, Any] = {"heatmap (H)": h, "LPIPS (L)": lpips, "expression (E)": expr}
    row.update(zip(names, values, strict=True))
    return row


TABLE_1 = PublishedTable(
    1,
    "Ablation: face heatmap (H), LPIPS loss (L), expression loss (E)",
    "CelebA-HQ, trained and evaluated on StarGAN v2's split, 256 px, learned lens",
    (
        _ablation_row(False, False, False, (0.851, 1.132, 1.313, 5.434, 6.473, 13.667, 8.008, 34.388)),
        _ablation_row(True, False, False, (0.847, 1.162, 1.350, 5.309, 6.260, 12.988, 7.654, 36.056)),
        _ablation_row(True, True, False, (0.847, 1.174, 1.359, 4.692, 5.683, 11.818, 7.037, 29.338)),
        _ablation_row(True, False, True, (0.664, 1.037, 1.199, 1.884, 2.081, 4.694, 4.365, 24.998)),
        _ablation_row(True, True, True, (0.697, 1.073, 1.255, 2.022, 2.259, 4.727, 4.985, 24.972)),
    ),
)

_DIS = {
    "DeepPrivacy": (0.783, 1.091, 1.187),
    "CIAGAN": (0.671, 0.919, 1.085),
    "FIT": (0.812, 1.207, 1.224),
    "IDeudemon": (0.819, 1.228, 1.233),
    "RiDDLE": (0.776, 1.033, 1.129),
    "Ours-LR": (0.795, 1.123, 1.294),
    "Ours": (0.734, 1.071, 1.251),
}
TABLE_2 = PublishedTable(
    2,
    "DIS against other de-identification methods",
    "trained on FFHQ, evaluated on CelebA-HQ, 256 px",
    tuple({"method": m, "DIS FR": v[0], "DIS CASIA": v[1], "DIS VGGFace2": v[2]} for m, v in _DIS.items()),
)

_DETECTION = {
    # FID, FD MtCNN, FD Dlib, BB MtCNN, BB Dlib, LM MtCNN, LM Dlib
    "CIAGAN": (32.611, 0.992, 0.937, 20.387, 15.476, 8.042, 8.930),
    "FIT": (30.331, 1.000, 0.984, 7.879, 4.218, 3.572, 4.047),
    "DeepPrivacy": (23.713, 1.000, 0.980, 4.654, 2.685, 3.280, 2.896),
    "RiDDLE": (15.389, 1.000, 0.991, 3.824, 1.700, 1.674, 1.512),
    "Ours-LR": (34.161, 1.000, 0.994, 5.358, 4.694, 2.392, 2.749),
    "Ours": (29.218, 1.000, 0.991, 5.314, 4.821, 2.298, 2.716),
}
_DETECTION_COLUMNS = ("FID", "FD MtCNN", "FD Dlib", "BB MtCNN", "BB Dlib", "LM MtCNN", "LM Dlib")
TABLE_3 = PublishedTable(
    3,
    "Detection, boxes, landmarks and FID against other methods",
    "trained on FFHQ, evaluated on CelebA-HQ, 256 px",
    tuple({"method": m, **dict(zip(_DETECTION_COLUMNS, v, strict=True))} for m, v in _DETECTION.items()),
)

TABLE_4 = PublishedTable(
    4,
    "Prototype camera: DIS on faces captured in the authors' lab",
    "the authors' lab captures (prototype camera); RiDDLE on conventional images",
    (
        {"method": "RiDDLE", "DIS FR": 0.798, "DIS CASIA": 0.958, "DIS VGGFace2": 1.224},
        {"method": "Ours-LR", "DIS FR": 0.808, "DIS CASIA": 1.141, "DIS VGGFace2": 1.310},
        {"method": "Ours", "DIS FR": 0.792, "DIS CASIA": 1.156, "DIS VGGFace2": 1.334},
    ),
)

TABLES = (TABLE_1, TABLE_2, TABLE_3, TABLE_4)

# privlens evaluation column -> (paper column, whether it is a pixel error that scales with size)
PRIVLENS_TO_PAPER: dict[str, tuple[str, bool]] = {
    "DIS FR (dlib)": ("DIS FR", False),
    "DIS FaceNet-CASIA": ("DIS CASIA", False),
    "DIS FaceNet-VGGFace2": ("DIS VGGFace2", False),
    "LM dlib": ("LM Dlib", True),
    "LM MTCNN": ("LM MtCNN", True),
    "Box dlib": ("BB Dlib", True),
    "Box MTCNN": ("BB MtCNN", True),
    "Detection dlib": ("FD Dlib", False),
    "Detection MTCNN": ("FD MtCNN", False),
    "FID": ("FID", False),
}
PERCENT_COLUMNS = ("Detection dlib", "Detection MTCNN")


def paper_value(column: str, method: str = "Ours") -> float | None:
    """The paper's figure for ``method`` ("Ours" or "Ours-LR") in a privlens column (Tables 2-3)."""
    if column not in PRIVLENS_TO_PAPER:
        return None
    paper_column = PRIVLENS_TO_PAPER[column][0]
    for table in (TABLE_2, TABLE_3):
        for row in table.rows:
            if row["method"] == method and paper_column in row:
                return float(row[paper_column])
    return None


def protocol_differences(dataset: str, size_px: int) -> list[str]:
    """What keeps a privlens run from matching the paper's Tables 2-3 protocol (empty: it matches)."""
    differences = []
    if dataset.lower().replace("-", "").replace("_", "") != PAPER_DATASET.lower().replace("-", ""):
        differences.append(f"data {dataset} (paper: {PAPER_DATASET})")
    if size_px != PAPER_SIZE_PX:
        differences.append(f"{size_px} px (paper: {PAPER_SIZE_PX} px)")
    return differences


def side_by_side(
    our_rows: list[dict[str, Any]], dataset: str, size_px: int, method_key: str = "method"
) -> list[dict[str, Any]]:
    """One row per (privlens method, metric) with the paper's "Ours" and "Ours-LR" figures beside it.

    ``our_rows`` are privlens evaluation rows (column names as in :data:`PRIVLENS_TO_PAPER`).
    Detection rates in percent are turned into fractions as the paper gives them. Pixel errors are
    also given scaled to 256 px (``ours @256 px``), a convenience, not a re-measurement. Every row
    names what differs from the paper's protocol; figures are comparable only where nothing does.
    """
    differences = protocol_differences(dataset, size_px)
    verdict = "protocol matches" if not differences else "not comparable: " + "; ".join(differences)
    rows = []
    for our in our_rows:
        for column, (paper_column, scales) in PRIVLENS_TO_PAPER.items():
            value = our.get(column)
            if value is None:
                continue
            ours = float(value) / 100.0 if column in PERCENT_COLUMNS else float(value)
            rows.append(
                {
                    "privlens method": our.get(method_key, "?"),
                    "metric (paper column)": paper_column,
                    "ours": ours,
                    "ours @256 px": ours * PAPER_SIZE_PX / size_px if scales else None,
                    "paper Ours": paper_value(column, "Ours"),
                    "paper Ours-LR": paper_value(column, "Ours-LR"),
                    "comparable": verdict,
                }
            )
    return rows


def published_markdown() -> str:
    """All four tables as markdown, each with its caption and setting."""
    from privlens.report.tables import to_markdown

    parts = [
        "# The paper's published figures",
        "",
        f"Source: {PAPER}. Transcribed from the paper's text. The paper does not state N for any table.",
        "",
    ]
    for table in TABLES:
        parts += [f"## Table {table.number}. {table.caption}", "", f"Setting: {table.setting}.", ""]
        parts += [to_markdown(list(table.rows)), ""]
    return "\n".join(parts)
