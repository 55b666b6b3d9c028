"""Zernike polynomials in Noll order, RMS-normalised over the unit disc.

Conventions (decided once, tested in ``tests/optics/test_zernike.py``):

* Noll index ``j >= 1`` (``j = 1`` piston, 2/3 tip/tilt, 4 defocus, ...).
* RMS normalisation over the unit disc: ``Z_j = N R_n^|m|(rho) trig(m theta)`` with
  ``N = sqrt(n + 1)`` for ``m = 0`` and ``sqrt(2 (n + 1))`` otherwise, so ``Z4 = sqrt(3)(2 rho^2 - 1)``
  and the mean of ``Z_i Z_j`` over the disc is the Kronecker delta.
* Even ``j`` carries ``cos(m theta)`` (``m > 0`` in signed notation), odd ``j`` carries
  ``sin(|m| theta)`` (``m < 0``); ``m = 0`` terms have no angular factor.
* ANSI/OSA single index ``k = (n (n + 2) + m) / 2`` starts at 0; ANSI uses the same normalisation
  and the same sign convention (``m < 0`` is ``sin``), so converting between Noll and ANSI is a
  re-indexing only.
* Sampling: on an ``N x N`` grid, column ``c`` has ``x = (c - N/2 + 0.5) / (N/2)`` and row ``r`` has
  ``y = (r - N/2 + 0.5) / (N/2)`` (pixel centres, y grows with the row index), ``theta = atan2(y, x)``.
  Values outside the unit disc are 0.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


def _check_positive_int(value: int, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def noll_to_nm(j: int) -> tuple[int, int]:
    """Radial order ``n`` and signed azimuthal frequency ``m`` of Noll index ``j`` (``j >= 1``)."""
    _check_positive_int(j, "Noll index j", 1)
    n = 0
    remainder = j - 1
    while remainder > n:
        n += 1
        remainder -= n
    m_abs = (n % 2) + 2 * ((remainder + ((n + 1) % 2)) // 2)
    sign = 1 if j % 2 == 0 else -1
    return n, sign * m_abs if m_abs else 0


def _check_nm(n: int, m: int) -> None:
    _check_positive_int(n, "radial order n", 0)
    if not isinstance(m, int) or isinstance(m, bool):
        raise ValueError(f"azimuthal frequency m must be an integer, got {m!r}")
    if abs(m) > n or (n - abs(m)) % 2:
        raise ValueError(f"(n={n}, m={m}) is not a Zernike term: need |m| <= n and n - |m| even")


def nm_to_noll(n: int, m: int) -> int:
    """Noll index of the term ``(n, m)``; ``m > 0`` is the cosine term, ``m < 0`` the sine term."""
    _check_nm(n, m)
    j = n * (n + 1) // 2 + abs(m)
    if m == 0:
        return j + 1
    cos_first = n % 4 in (0, 1)  # within a pair, the even (cos) index comes first for these n
    if (m > 0 and not cos_first) or (m < 0 and cos_first):
        j += 1
    return j


def nm_to_ansi(n: int, m: int) -> int:
    """ANSI/OSA index ``k = (n (n + 2) + m) / 2`` (``k = 0`` is piston)."""
    _check_nm(n, m)
    return (n * (n + 2) + m) // 2


def ansi_to_nm(k: int) -> tuple[int, int]:
    """Inverse of :func:`nm_to_ansi`."""
    _check_positive_int(k, "ANSI index k", 0)
    n = math.ceil((-3 + math.sqrt(9 + 8 * k)) / 2)
    m = 2 * k - n * (n + 2)
    return n, m


def noll_to_ansi(j: int) -> int:
    """ANSI/OSA index (0-based) of Noll index ``j`` (1-based)."""
    return nm_to_ansi(*noll_to_nm(j))


def ansi_to_noll(k: int) -> int:
    """Noll index (1-based) of ANSI/OSA index ``k`` (0-based)."""
    return nm_to_noll(*ansi_to_nm(k))


@lru_cache(maxsize=256)
def _radial_coefficients(n: int, m_abs: int) -> tuple[tuple[int, int], ...]:
    """``(coefficient, power)`` pairs of the radial polynomial ``R_n^m(rho)``."""
    terms = []
    for s in range((n - m_abs) // 2 + 1):
        coefficient = (
            (-1) ** s
            * math.factorial(n - s)
            // (
                math.factorial(s)
                * math.factorial((n + m_abs) // 2 - s)
                * math.factorial((n - m_abs) // 2 - s)
            )
        )
        terms.append((coefficient, n - 2 * s))
    return tuple(terms)


def zernike_polar(j: int, rho: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Noll term ``Z_j`` at polar coordinates ``(rho, theta)``; 0 where ``rho > 1``."""
    n, m = noll_to_nm(j)
    m_abs = abs(m)
    radial = torch.zeros_like(rho)
    for coefficient, power in _radial_coefficients(n, m_abs):
        radial = radial + coefficient * rho**power
    if m == 0:
        value = math.sqrt(n + 1) * radial
    elif m > 0:
        value = math.sqrt(2 * (n + 1)) * radial * torch.cos(m_abs * theta)
    else:
        value = math.sqrt(2 * (n + 1)) * radial * torch.sin(m_abs * theta)
    return torch.where(rho <= 1.0, value, torch.zeros_like(value))


def unit_disc_grid(
    grid_size: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(x, y)`` of an ``N x N`` grid spanning ``[-1, 1]`` (see module doc)."""
    _check_positive_int(grid_size, "grid_size", 1)
    half = grid_size / 2
    axis = (torch.arange(grid_size, dtype=dtype, device=device) - half + 0.5) / half
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return x, y


def zernike_on_points(num_terms: int, x: torch.Tensor, y: torch.Tensor, first_term: int = 1) -> torch.Tensor:
    """Terms ``j = first_term .. first_term + num_terms - 1`` at arbitrary points of the unit disc.

    ``x`` and ``y`` are normalised pupil coordinates (1 = aperture edge). Returns
    ``[num_terms, *x.shape]`` in the dtype of ``x``.
    """
    _check_positive_int(num_terms, "num_terms", 1)
    rho = torch.sqrt(x * x + y * y)
    theta = torch.atan2(y, x)
    return torch.stack([zernike_polar(j, rho, theta) for j in range(first_term, first_term + num_terms)])


def zernike_basis(
    num_terms: int,
    grid_size: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Noll terms ``j = 1..num_terms`` on the pixel centres of an ``N x N`` grid: ``[num_terms, N, N]``.

    Evaluated in ``dtype`` (float64 by default; cast afterwards if float32 is wanted).
    """
    x, y = unit_disc_grid(grid_size, dtype=dtype, device=device)
    return zernike_on_points(num_terms, x, y)


def term_names(num_terms: int) -> list[str]:
    """Human-readable names for Noll terms 1..num_terms (``"Z4 defocus (n=2, m=0)"``)."""
    common = {
        1: "piston",
        2: "tip",
        3: "tilt",
        4: "defocus",
        5: "oblique astigmatism",
        6: "vertical astigmatism",
        7: "vertical coma",
        8: "horizontal coma",
        9: "vertical trefoil",
        10: "oblique trefoil",
        11: "primary spherical",
    }
    names = []
    for j in range(1, num_terms + 1):
        n, m = noll_to_nm(j)
        label = f"Z{j} (n={n}, m={m})"
        names.append(f"{label} {common[j]}" if j in common else label)
    return names
