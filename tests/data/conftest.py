from pathlib import Path

import pytest
from PIL import Image

from privlens.data.images import save_image
from privlens.data.samples import astronaut, lfw_faces, lfw_non_faces


@pytest.fixture(scope="session")
def face_tree(tmp_path_factory) -> Path:
    """A small photo folder: faces (RGB, grey, RGBA), a face-less image and broken files."""
    root = tmp_path_factory.mktemp("photos")
    faces, non_faces = lfw_faces(), lfw_non_faces()
    save_image(astronaut(256), root / "female" / "astronaut.jpg")
    save_image(faces[0], root / "male" / "lfw000.png")
    save_image(faces[1][:1], root / "male" / "lfw001_grey.png")  # 1-channel PNG
    rgba = Image.fromarray((faces[2].numpy().transpose(1, 2, 0) * 255).astype("uint8")).convert("RGBA")
    rgba.save(root / "female" / "lfw002_rgba.png")
    save_image(non_faces[0], root / "male" / "no_face.png")
    (root / "female" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "male" / "empty.png").write_bytes(b"")
    return root


@pytest.fixture(autouse=True)
def _single_thread(one_torch_thread):
    """Every test of this package runs on one torch thread (see tests/conftest.py)."""
    yield
