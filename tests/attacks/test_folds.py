"""Cross-validated attack figures: the deal of faces into folds and the pooling of their counts."""

from math import comb

import pytest

from privlens.attacks.folds import (
    clopper_pearson,
    deal_folds,
    pool_fold_rows,
    render_pooled,
    render_union,
    union_over_attacks,
)


def test_folds_are_disjoint_cover_every_face_and_do_not_depend_on_the_input_order():
    names = [f"face{i:03d}.png" for i in range(23)]
    folds = deal_folds(names, 5, seed=0)
    assert sorted(sum(folds, [])) == sorted(names)  # every face once: disjoint and covering
    assert {len(f) for f in folds} == {4, 5}
    assert deal_folds(list(reversed(names)), 5, seed=0) == folds
    assert deal_folds(names, 5, seed=1) != folds
    for bad in (1, 24):
        with pytest.raises(ValueError, match="folds"):
            deal_folds(names, bad, seed=0)
    with pytest.raises(ValueError, match="unique"):
        deal_folds(["a.png", "a.png", "b.png"], 2, seed=0)


def _tail_at_least(hits: int, n: int, p: float) -> float:
    return sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(hits, n + 1))


@pytest.mark.parametrize(("hits", "n"), [(0, 19), (3, 19), (11, 93), (19, 19)])
def test_clopper_pearson_bounds_solve_the_binomial_tails(hits, n):
    lo, hi = clopper_pearson(hits, n)
    # the exact interval: P(X >= hits | lo) = 2.5 % and P(X <= hits | hi) = 2.5 %, by direct sums
    if hits > 0:
        assert _tail_at_least(hits, n, lo) == pytest.approx(0.025, abs=1e-9)
    else:
        assert lo == 0.0
    if hits < n:
        assert 1 - _tail_at_least(hits + 1, n, hi) == pytest.approx(0.025, abs=1e-9)
    else:
        assert hi == 1.0
    assert lo <= hits / n <= hi


def test_clopper_pearson_edge_cases_match_the_closed_forms():
    assert clopper_pearson(0, 19)[1] == pytest.approx(1 - 0.025 ** (1 / 19))  # 0.176
    assert clopper_pearson(19, 19)[0] == pytest.approx(0.025 ** (1 / 19))
    with pytest.raises(ValueError):
        clopper_pearson(5, 4)


def _row(attack, faces, rank1, reid, measured=None, distance=0.7, tar=0):
    measured = faces if measured is None else measured
    return {
        "lens": "stop", "attack": attack, "faces": faces, "measured_faces": measured, "psnr": 20.0,
        "rank1": rank1 / faces, "chance_rank1": 1 / faces, "reidentified": reid / measured,
        "tar@far0.01": tar / faces, "tar@far0.001": 0.0, "identity_distance": distance,
    }  # fmt: skip


def test_pooling_sums_the_folds_counts_not_their_rates():
    folds = [
        [_row("none", 19, 1, 0), _row("hybrid", 19, 2, 1, distance=0.6, tar=1)],
        [_row("none", 18, 0, 1), _row("hybrid", 18, 1, 3, measured=17, distance=0.8)],
    ]
    pooled = {row["attack"]: row for row in pool_fold_rows(folds)}
    hybrid = pooled["hybrid"]
    assert (hybrid["faces"], hybrid["rank1_hits"], hybrid["folds"]) == (37, 3, 2)
    assert hybrid["rank1"] == pytest.approx(3 / 37)
    assert hybrid["chance_rank1"] == pytest.approx(2 / 37)  # 1/19 for 19 faces, 1/18 for 18
    assert (hybrid["reidentified_hits"], hybrid["measured_faces"]) == (4, 36)
    assert hybrid["identity_distance"] == pytest.approx((19 * 0.6 + 17 * 0.8) / 36)
    assert hybrid["tar@far0.01"] == pytest.approx(1 / 37)
    assert hybrid["rank1_ci"] == clopper_pearson(3, 37)
    assert pooled["none"]["rank1_hits"] == 1
    table = render_pooled(list(pooled.values()), [["a"] * 19, ["b"] * 18], 0, "--only hybrid")
    assert "3/37 = 0.081" in table and "sizes 19, 18" in table and "--only hybrid" in table


def _face(fold, face, attack, hit, reid):
    return {"fold": fold, "face": face, "attack": attack, "rank1_hit": hit, "reidentified": reid}


def test_union_counts_a_face_once_when_any_attack_identifies_it():
    nan = float("nan")
    rows = [
        # fold 0: three faces with a dlib face (gallery 3), one without
        _face(0, "a", "tik", 1.0, 0.0), _face(0, "a", "inv", 1.0, 1.0),  # both: counted once
        _face(0, "b", "tik", 0.0, 0.0), _face(0, "b", "inv", 1.0, 0.0),  # one attack suffices
        _face(0, "c", "tik", 0.0, 0.0), _face(0, "c", "inv", 0.0, 0.0),
        _face(0, "d", "tik", nan, nan), _face(0, "d", "inv", nan, nan),  # not measured
        # fold 1: gallery 2
        _face(1, "e", "tik", 0.0, 1.0), _face(1, "e", "inv", 0.0, 0.0),
        _face(1, "f", "tik", 0.0, 0.0), _face(1, "f", "inv", 0.0, 0.0),
        _face(1, "f", "none", 1.0, 1.0),  # an attack outside the union is ignored
    ]  # fmt: skip
    union = union_over_attacks(rows, ["tik", "inv"])
    assert (union["faces"], union["rank1_hits"], union["reidentified_hits"]) == (5, 2, 2)
    assert union["rank1_ci"] == clopper_pearson(2, 5)
    assert union["chance_low"] == pytest.approx((3 * (1 / 3) + 2 * (1 / 2)) / 5)
    assert union["chance_high"] == pytest.approx((3 * (2 / 3) + 2 * 1.0) / 5)  # k / n, at most 1
    one = union_over_attacks(rows, ["tik"])
    assert one["rank1_hits"] == 1 and one["chance_high"] == one["chance_low"] == union["chance_low"]
    assert "2/5 = 0.400" in render_union(union)
    with pytest.raises(ValueError, match="no per-face result of none"):
        union_over_attacks(rows, ["tik", "none"])
