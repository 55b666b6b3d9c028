import numpy as np
import pytest
import torch

from privlens.data.samples import astronaut, lfw_faces, lfw_non_faces
from privlens.faces import face_landmarks


@pytest.fixture(scope="session")
def astro() -> torch.Tensor:
    return astronaut(None)


@pytest.fixture(scope="session")
def astro_landmarks(astro) -> np.ndarray:
    found = face_landmarks(astro)
    assert found is not None
    return found[1]


@pytest.fixture(scope="session")
def lfw() -> torch.Tensor:
    return lfw_faces()


@pytest.fixture(scope="session")
def non_faces() -> torch.Tensor:
    return lfw_non_faces()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """MTCNN and the small CNNs here run many tiny ops: one thread is several times faster on a
    busy 2-core machine. Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
