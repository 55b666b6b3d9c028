import numpy as np
import pytest
from scipy import linalg

from privlens.eval import FD_DLIB, fd_dlib, frechet_distance
from privlens.eval.frechet import gaussian_stats
from privlens.eval.identity import DlibEmbedder


def test_matches_the_closed_form_for_diagonal_covariances():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    expected = 9.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_matches_scipy_sqrtm_for_full_covariances(rng):
    x, y = rng.normal(size=(300, 6)), rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 1
    (m1, s1), (m2, s2) = gaussian_stats(x), gaussian_stats(y)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-6)


def test_sample_form_equals_the_covariance_form(rng):
    from privlens.eval.frechet import fd_between

    x, y = rng.normal(size=(12, 40)), rng.normal(size=(9, 40)) * 2 + 0.5
    expected = frechet_distance(*gaussian_stats(x), *gaussian_stats(y))
    assert fd_between(x, y) == pytest.approx(expected, rel=1e-6)  # N < D: nuclear-norm path
    many = rng.normal(size=(60, 5))
    assert fd_between(many, many[::-1]) == pytest.approx(0.0, abs=1e-9)  # N >= D path


def test_fd_dlib_of_a_set_against_itself_is_zero_and_against_another_is_not(lfw):
    embeddings = [e for e in DlibEmbedder().embed(list(lfw[:24])) if e is not None]
    first, second = np.stack(embeddings[:10]), np.stack(embeddings[10:20])
    assert FD_DLIB == "FD-dlib"
    assert fd_dlib(first, first) == pytest.approx(0.0, abs=1e-9)  # 10 samples, 128-d: singular
    assert fd_dlib(first, second) > 0.05
    assert fd_dlib(first, second) == pytest.approx(fd_dlib(second, first), rel=1e-6)
    with pytest.raises(ValueError):
        fd_dlib(first[:1], second)
