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
