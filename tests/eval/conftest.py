import socket

import numpy as np
import pytest
import torch

from privlens.eval.weights import WEIGHT_ENV_VARS


@pytest.fixture(scope="session")
def shift_right():
    def shift(image: torch.Tensor, pixels: int) -> torch.Tensor:
        """The image content moved ``pixels`` to the right (left edge replicated), same size."""
        width = image.shape[-1]
        return torch.nn.functional.pad(image[None], (pixels, 0, 0, 0), mode="replicate")[0, ..., :width]

    return shift


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network (as on the build machines, whatever this machine has) and empty weight caches."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(socket.gaierror(-2, "offline"))
    )
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for name in WEIGHT_ENV_VARS.values():
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def seeded_state(module_factory, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in module_factory().state_dict().items()}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _single_thread(one_torch_thread):
    """Every test of this package runs on one torch thread (see tests/conftest.py)."""
    yield
