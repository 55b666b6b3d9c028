"""Zernike conventions against published values (independent peer libraries agree to 1e-15)."""

import math

import pytest
import torch

from privlens.optics.zernike import (
    ansi_to_nm,
    ansi_to_noll,
    nm_to_ansi,
    nm_to_noll,
    noll_to_ansi,
    noll_to_nm,
    term_names,
    unit_disc_grid,
    zernike_basis,
)

# (Noll j, x, y, value) on the 5 x 5 grid whose coordinates are (-0.8, -0.4, 0, 0.4, 0.8)
REFERENCE_VALUES = [
    (2, 0.8, 0.0, 1.6),
    (3, 0.0, 0.8, 1.6),
    (4, 0.0, 0.0, -1.73205),
    (4, 0.4, 0.0, -1.17779),
    (4, 0.8, 0.0, 0.48497),
    (4, 0.4, 0.4, -0.62354),
    (5, 0.4, 0.4, 0.78384),
    (5, 0.4, -0.4, -0.78384),
    (6, 0.8, 0.0, 1.56767),
    (6, 0.0, 0.8, -1.56767),
    (7, 0.0, -0.4, 1.71968),
    (8, -0.4, 0.0, 1.71968),
    (11, 0.0, 0.0, 2.23607),
    (11, 0.4, 0.0, 0.43290),
    (12, 0.4, 0.0, -1.19408),
    (14, 0.8, 0.0, 1.29527),
]


def _index(coordinate: float) -> int:
    return round(coordinate / 0.4) + 2


def test_grid_coordinates_are_pixel_centres():
    x, y = unit_disc_grid(5)
    assert torch.allclose(x[0], torch.tensor([-0.8, -0.4, 0.0, 0.4, 0.8], dtype=torch.float64))
    assert torch.allclose(y[:, 0], torch.tensor([-0.8, -0.4, 0.0, 0.4, 0.8], dtype=torch.float64))


@pytest.mark.parametrize(("j", "x", "y", "expected"), REFERENCE_VALUES)
def test_published_values(j, x, y, expected):
    basis = zernike_basis(14, 5)
    assert basis[j - 1, _index(y), _index(x)].item() == pytest.approx(expected, abs=5e-6)


def test_zero_outside_unit_disc():
    basis = zernike_basis(15, 5)
    for row, col in [(0, 0), (0, 4), (4, 0), (4, 4)]:  # corners, r = 1.13 > 1
        assert torch.all(basis[:, row, col] == 0)


def test_gram_matrix_is_identity_over_the_disc():
    # Terms up to radial order 5; higher orders need finer grids (order 7: 1.5e-3 at 512 px).
    basis = zernike_basis(21, 512)
    x, y = unit_disc_grid(512)
    inside = (x * x + y * y) <= 1
    samples = basis[:, inside]
    gram = samples @ samples.T / inside.sum()
    assert torch.allclose(gram, torch.eye(21, dtype=gram.dtype), atol=1e-3)


def test_noll_sequence_and_parity_convention():
    expected = [(0, 0), (1, 1), (1, -1), (2, 0), (2, -2), (2, 2), (3, -1), (3, 1), (3, -3), (3, 3), (4, 0)]
    assert [noll_to_nm(j) for j in range(1, 12)] == expected
    for j in range(2, 200):
        n, m = noll_to_nm(j)
        if m != 0:
            assert (m > 0) == (j % 2 == 0)  # even j -> cos (m > 0), odd j -> sin


def test_index_round_trips():
    for j in range(1, 400):
        assert nm_to_noll(*noll_to_nm(j)) == j
        assert ansi_to_noll(noll_to_ansi(j)) == j
    for k in range(0, 400):
        assert nm_to_ansi(*ansi_to_nm(k)) == k
        assert noll_to_ansi(ansi_to_noll(k)) == k


def test_ansi_known_values():
    assert noll_to_ansi(4) == 4  # defocus is ANSI 4 and Noll 4
    assert noll_to_ansi(5) == 3  # oblique astigmatism (2, -2)
    assert noll_to_ansi(6) == 5
    assert ansi_to_noll(12) == 11  # primary spherical
    assert ansi_to_nm(7) == (3, -1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_invalid_noll_index(bad):
    with pytest.raises(ValueError):
        noll_to_nm(bad)


@pytest.mark.parametrize(("n", "m"), [(2, 1), (1, 3), (-1, 0)])
def test_invalid_nm(n, m):
    with pytest.raises(ValueError):
        nm_to_noll(n, m)


def test_rms_of_defocus_matches_closed_form():
    # Z4 = sqrt(3)(2 rho^2 - 1) at rho = 0.5 is -sqrt(3)/2
    basis = zernike_basis(4, 4, dtype=torch.float64)
    x, y = unit_disc_grid(4)
    rho = torch.sqrt(x * x + y * y)
    inside = rho <= 1
    expected = math.sqrt(3) * (2 * rho**2 - 1)
    assert torch.allclose(basis[3][inside], expected[inside])


def test_term_names():
    names = term_names(4)
    assert names[3].startswith("Z4 (n=2, m=0) defocus")
