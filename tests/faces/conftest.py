import numpy as np
import pytest

from privlens.faces import face_landmarks


@pytest.fixture(scope="session")
def astro_landmarks(astro) -> np.ndarray:
    found = face_landmarks(astro)
    assert found is not None
    return found[1]


@pytest.fixture(autouse=True)
def _single_thread(one_torch_thread):
    """Every test of this package runs on one torch thread (see tests/conftest.py)."""
    yield
