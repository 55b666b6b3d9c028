"""Fixtures shared by the test packages: the embedded sample faces and a one-thread switch."""

import pytest
import torch

from privlens.data.samples import astronaut, lfw_faces, lfw_non_faces


@pytest.fixture(scope="session")
def astro() -> torch.Tensor:
    """The astronaut photo at its full 512 px."""
    return astronaut(None)


@pytest.fixture(scope="session")
def lfw() -> torch.Tensor:
    return lfw_faces()


@pytest.fixture(scope="session")
def non_faces() -> torch.Tensor:
    return lfw_non_faces()


@pytest.fixture
def one_torch_thread():
    """MTCNN and small CNNs run many tiny ops: one thread is several times faster on a busy
    2-core machine. Restored after the test. Packages opt in with an autouse wrapper."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
