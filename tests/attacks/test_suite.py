"""The attack suite on the embedded LFW faces (64 px, small settings)."""

import pytest
import torch

from privlens.attacks.capture import CaptureNoise, sensor_captures
from privlens.attacks.deconvolution import wiener_deconvolve
from privlens.attacks.identity import OriginalBoxIdentity
from privlens.attacks.inversion import (
    InversionTraining,
    InversionUNet,
    invert,
    train_inversion,
    train_inversion_on_pairs,
)
from privlens.attacks.job import embedded_faces, split_faces
from privlens.attacks.suite import (
    AttackSettings,
    attack_lens,
    bicubic_from_large_pixels,
    check_disjoint,
    choose_rl,
    choose_wiener,
    split_attacker,
    strongest,
)
from privlens.eval.quality import psnr
from privlens.optics import make_camera


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return embedded_faces(64)


def test_open_lens_is_identified_and_every_figure_states_its_n(faces):
    attacker, evaluation = split_faces(faces[:22], 6)
    settings = AttackSettings(
        wiener_lambdas=(1e-6, 1e-3),
        rl_max_iterations=20,
        inversion=InversionTraining(steps=20, width=8, check_every=10),
        blind_eps=(1.0,),
        blind_floors=(2.0,),
        mmse_noise_scales=(1.0,),
        tikhonov_lambdas=(1e-3,),
        tikhonov_iterations=(10,),
    )
    camera = make_camera("open", 64)
    result = attack_lens("open", camera, attacker, evaluation, settings, OriginalBoxIdentity())
    assert set(result.scores) == {
        "none",
        "wiener",
        "wiener-mmse",
        "richardson-lucy",
        "tikhonov",
        "blind-wiener",
        "blind-rl",
        "inversion",
        "rl+inversion",
        "tikhonov+inversion",
    }
    for attack, scores in result.scores.items():
        assert scores["faces"] >= 5, attack
        assert scores["chance_rank1"] == pytest.approx(1 / scores["faces"])
        assert scores["rank1_lo"] <= scores["rank1"] <= scores["rank1_hi"]
        assert scores["impostor_pairs"] > 0
    for attack in ("none", "wiener", "richardson-lucy", "tikhonov", "blind-rl"):
        assert result.scores[attack]["rank1"] == 1.0, attack
        assert result.scores[attack]["reidentified"] == 1.0, attack
    assert strongest(result.scores) in result.scores
    for attack, values in result.per_image.items():
        # the per-face hits are the faces behind the table's rank-1 (NaN where dlib saw no face)
        hits = values["rank1_hit"]
        measured = ~torch.isnan(hits)
        assert int(measured.sum()) == result.scores[attack]["faces"], attack
        assert float(hits[measured].mean()) == pytest.approx(result.scores[attack]["rank1"]), attack
        assert torch.equal(measured, ~torch.isnan(values["identity_distance"])), attack


def test_attacker_and_evaluated_faces_must_be_disjoint(faces):
    check_disjoint(faces[20:40], faces[:20])  # different photos: fine
    with pytest.raises(ValueError, match="evaluated face 3 is also among the attacker's faces"):
        check_disjoint(faces[20:40], torch.cat([faces[:3], faces[25:26]]))
    with pytest.raises(ValueError, match="mirrored"):
        check_disjoint(faces[20:40], faces[30:31].flip(-1))
    resized = torch.nn.functional.interpolate(faces[22:23], size=(48, 48), mode="area")
    small = torch.nn.functional.interpolate(faces[20:40], size=(48, 48), mode="area")
    with pytest.raises(ValueError):
        check_disjoint(small, resized)
    with pytest.raises(ValueError, match="also among"):
        attack_lens("open", make_camera("open", 64), faces[:20], faces[5:10], AttackSettings(inversion=None))
    tune, own = split_attacker(faces[:20], 0.25, seed=0)
    assert tune.shape[0] == 15 and own.shape[0] == 5
    check_disjoint(tune, own)


def test_identity_distance_separates_people(faces):
    identity = OriginalBoxIdentity()
    evaluation = faces[:8]
    same = identity(evaluation, evaluation)
    other = identity(evaluation, evaluation.roll(1, dims=0))
    valid = ~torch.isnan(same)
    assert valid.sum() >= 6
    assert torch.all(same[valid] == 0)
    assert other[valid].nanmean() > 0.6


def test_attacker_choices_are_the_psnr_best_on_their_own_faces(faces):
    camera = make_camera("defocus", 64)
    attacker = faces[40:60]
    captures = sensor_captures(camera, attacker)
    psf = camera.psf().detach()
    lambdas = (1e-6, 1e-4, 1e-2, 1.0)
    choice = choose_wiener(captures, attacker, psf, lambdas)
    independent = {
        lam: float(psnr(wiener_deconvolve(captures, psf, lam), attacker).mean()) for lam in lambdas
    }
    assert choice.value == max(independent, key=independent.get)
    assert choice.candidates == pytest.approx(independent, abs=1e-4)
    assert len(set(round(v, 3) for v in independent.values())) == len(lambdas)  # a real choice
    rl = choose_rl(captures, attacker, psf, (1, 3, 10))
    assert rl.value == max(rl.candidates, key=rl.candidates.get)


def test_learned_inversion_improves_over_the_raw_capture(faces):
    camera = make_camera("defocus", 64)
    attacker, evaluation = faces[20:], faces[:20]
    settings = InversionTraining(steps=60, width=8, batch_size=8)
    model = train_inversion(camera, attacker, settings)
    captures = sensor_captures(camera, evaluation)
    recovered = invert(model, captures)
    assert float(psnr(recovered, evaluation).mean()) > float(psnr(captures, evaluation).mean()) + 1.0


def test_hybrid_attack_improves_on_its_richardson_lucy_input(faces):
    """rl+inversion: a U-Net trained on the attacker's own RL outputs recovers more than RL alone;
    asking for the hybrid alone also runs (and scores) its RL stage."""
    attacker, evaluation = split_faces(faces[:40], 10)
    settings = AttackSettings(
        attacks=("rl+inversion",),
        rl_max_iterations=30,
        inversion=InversionTraining(steps=80, width=8, batch_size=8, check_every=20, patience=4),
        hybrid_copies=2,
    )
    result = attack_lens("defocus", make_camera("defocus", 64), attacker, evaluation, settings)
    assert set(result.scores) == {"none", "richardson-lucy", "rl+inversion"}
    assert result.scores["rl+inversion"]["psnr"] > result.scores["richardson-lucy"]["psnr"] + 0.3
    assert "Richardson–Lucy outputs" in result.choices["rl+inversion"].note
    off = AttackSettings(
        attacks=("rl+inversion",), rl_max_iterations=10, inversion=settings.inversion, hybrid=False
    )
    assert (
        "rl+inversion"
        not in attack_lens("defocus", make_camera("defocus", 64), attacker, evaluation, off).scores
    )
    with pytest.raises(ValueError, match="shape"):
        train_inversion_on_pairs(torch.rand(4, 3, 16, 16), torch.rand(4, 3, 8, 8))


def test_lowres_attacks_are_bicubic_and_inversion(faces):
    attacker, evaluation = split_faces(faces[:24], 4)
    settings = AttackSettings(inversion=None, noise=CaptureNoise(enabled=False))
    result = attack_lens("lowres", make_camera("lowres", 64), attacker, evaluation, settings)
    assert set(result.recovered) == {"none", "bicubic"}
    assert result.scores["bicubic"]["psnr"] > result.scores["none"]["psnr"]
    # a smooth scene is recovered from its large-pixel reading better than the blocky reading
    ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64).contiguous()
    reading = make_camera("lowres", 64)(ramp).image.detach()
    assert float(psnr(bicubic_from_large_pixels(reading, 16), ramp)) > float(psnr(reading, ramp)) + 3


def test_unet_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible by 8"):
        InversionUNet(width=4, depth=3)(torch.rand(1, 3, 60, 60))
    assert InversionUNet(width=4, depth=2)(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_split_needs_faces_on_both_sides(faces):
    with pytest.raises(ValueError, match="attacker"):
        split_faces(faces[:5], 5)


def test_a_chosen_subset_of_attacks_runs(faces):
    attacker, evaluation = split_faces(faces[:22], 6)
    settings = AttackSettings(attacks=("richardson-lucy",), rl_max_iterations=10, inversion=None)
    result = attack_lens("defocus", make_camera("defocus", 64), attacker, evaluation, settings)
    assert set(result.scores) == {"none", "richardson-lucy"}


class _ConstantNet(torch.nn.Module):
    """Stands in for a trained U-Net: paints every pixel ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value, self.trained_steps, self.validation_psnr = value, 1, 0.0

    def forward(self, captures: torch.Tensor) -> torch.Tensor:
        return torch.full_like(captures, self.value)


def test_each_learned_attack_applies_its_own_network(faces, monkeypatch):
    """The plain inversion must use the network trained on captures even when the hybrid's
    network is trained after it (a late-bound closure once scored the hybrid's network on raw
    captures as ``inversion``: 12.2 dB where the attacker's own check said 18.1 dB)."""
    import privlens.attacks.suite as suite

    hybrids = iter([_ConstantNet(0.75), _ConstantNet(0.5)])  # trained in this order
    monkeypatch.setattr(suite, "train_inversion", lambda *args, **kwargs: _ConstantNet(0.25))
    monkeypatch.setattr(suite, "train_inversion_on_pairs", lambda *args, **kwargs: next(hybrids))
    attacker, evaluation = split_faces(faces[:22], 6)
    settings = AttackSettings(
        attacks=("inversion", "rl+inversion", "tikhonov+inversion"),
        rl_max_iterations=5,
        inversion=InversionTraining(steps=1),
        hybrid_copies=1,
        tikhonov_lambdas=(1e-3,),
        tikhonov_iterations=(5,),
    )
    result = attack_lens("defocus", make_camera("defocus", 64), attacker, evaluation, settings)
    assert torch.all(result.recovered["inversion"] == 0.25)
    assert torch.all(result.recovered["rl+inversion"] == 0.75)
    assert torch.all(result.recovered["tikhonov+inversion"] == 0.5)


def test_tikhonov_attack_is_tuned_on_the_attackers_faces_and_beats_the_capture(faces):
    """choose_tikhonov: the (lambda, iterations) pair with the best PSNR on the attacker's faces
    (checked against an independent grid), and the tuned attack recovers more than the capture."""
    from privlens.attacks.deconvolution import tikhonov_cg
    from privlens.attacks.suite import choose_tikhonov

    camera = make_camera("defocus", 64)
    attacker, evaluation = faces[20:40], faces[:10]
    captures = sensor_captures(camera, attacker)
    psf = camera.psf().detach()
    lambdas, counts = (1e-4, 1e-2), (3, 30)
    choice = choose_tikhonov(captures, attacker, psf, lambdas, counts)
    iterations = choice.iterations
    grid = {
        (lam, k): float(psnr(tikhonov_cg(captures, psf, lam, k), attacker).mean())
        for lam in lambdas
        for k in counts
    }
    assert (choice.value, iterations) == max(grid, key=grid.get)
    assert choice.candidates[choice.value] == pytest.approx(max(grid.values()), abs=1e-4)
    settings = AttackSettings(
        attacks=("tikhonov",), inversion=None, tikhonov_lambdas=lambdas, tikhonov_iterations=counts
    )
    result = attack_lens("defocus", camera, attacker, evaluation, settings)
    assert set(result.scores) == {"none", "tikhonov"}
    assert result.scores["tikhonov"]["psnr"] > result.scores["none"]["psnr"] + 0.5


def test_result_rows_label_network_steps_and_carry_the_attackers_own_psnr():
    from privlens.attacks.job import result_rows
    from privlens.attacks.suite import Choice, LensAttackResult

    choices = {
        "richardson-lucy": Choice(40.0, {30.0: 17.0, 40.0: 17.5}),
        "rl+inversion": Choice(300.0, {300.0: 20.2}),
        "tikhonov": Choice(3e-5, {3e-5: 19.6}, "lambda; 20 conjugate-gradient iterations", 20),
        "tikhonov+inversion": Choice(500.0, {500.0: 20.9}),
    }
    names = ("none", "richardson-lucy", "rl+inversion", "tikhonov", "tikhonov+inversion")
    scores = {name: {"psnr": 1.0} for name in names}
    rows = {row["attack"]: row for row in result_rows(LensAttackResult("x", {}, choices, scores, {}))}
    assert rows["rl+inversion"]["choice"] == "steps=300"
    assert rows["richardson-lucy"]["choice"] == "iterations=40"
    assert rows["tikhonov"]["choice"] == "lambda=3.0e-05, 20 iterations"
    assert rows["tikhonov+inversion"]["choice"] == "steps=500"
    assert rows["rl+inversion"]["attacker_psnr"] == 20.2 and rows["richardson-lucy"]["attacker_psnr"] == 17.5
    assert rows["none"]["attacker_psnr"] != rows["none"]["attacker_psnr"]  # NaN: nothing chosen


def test_face_rows_name_each_evaluated_face_and_mark_hits_and_reidentifications():
    from privlens.attacks.job import face_rows
    from privlens.attacks.suite import LensAttackResult

    nan = float("nan")
    per_image = {
        "none": {
            "psnr": torch.tensor([20.0, 21.0, 22.0]),
            "ssim": torch.tensor([0.5, 0.6, 0.7]),
            "identity_distance": torch.tensor([0.55, 0.61, nan], dtype=torch.float64),
            "rank1_hit": torch.tensor([1.0, 0.0, nan], dtype=torch.float64),
        },
        "wiener": {"psnr": torch.tensor([1.0, 2.0, 3.0]), "ssim": torch.tensor([0.1, 0.2, 0.3])},
    }
    result = LensAttackResult("stop", {}, {}, {}, per_image)
    rows = face_rows(result, ["a.png", "b/c.png", "d.png"])
    assert [(r["attack"], r["face"]) for r in rows] == [
        ("none", "a.png"),
        ("none", "b/c.png"),
        ("none", "d.png"),
        ("wiener", "a.png"),
        ("wiener", "b/c.png"),
        ("wiener", "d.png"),
    ]
    assert [r["reidentified"] for r in rows[:2]] == [1.0, 0.0]  # 0.55 < 0.6 <= 0.61
    assert [r["rank1_hit"] for r in rows[:2]] == [1.0, 0.0] and rows[0]["psnr"] == 20.0
    unmeasured = [rows[2]["reidentified"], rows[2]["rank1_hit"], rows[3]["identity_distance"]]
    assert all(value != value for value in unmeasured)  # NaN: no dlib face / no identity backend
    with pytest.raises(ValueError, match="2 face names for 3"):
        face_rows(result, ["a.png", "b.png"])


def test_face_folder_names_are_paths_below_the_folder(tmp_path):
    from privlens.attacks.job import load_face_folder
    from privlens.data.images import save_image

    faces = embedded_faces(32)
    save_image(faces[0], tmp_path / "b.png")
    save_image(faces[1], tmp_path / "sub" / "a.png")
    (tmp_path / "broken.png").write_bytes(b"nope")
    images, skipped, names = load_face_folder(tmp_path, 32)
    assert names == ["b.png", "sub/a.png"] and images.shape[0] == 2
    assert [path.name for path, _ in skipped] == ["broken.png"]
    assert load_face_folder(tmp_path / "b.png", 32)[2] == ["b.png"]  # a single image file


class _IndexedLandmarks:
    """A stand-in for the dlib identity's ``landmarks``: face ``k`` (its index written in pixel
    (0, 0, 0)) has the points ``shapes[k]``, or no face where ``missing`` says so."""

    def __init__(self, shapes, missing=()):
        self.shapes, self.missing = shapes, set(missing)

    def landmarks(self, images):
        keys = images[:, 0, 0, 0].long().tolist()
        return [None if k in self.missing else self.shapes[k] for k in keys]


def _indexed_images(first: int, count: int) -> torch.Tensor:
    images = torch.zeros(count, 3, 8, 8)
    images[:, 0, 0, 0] = torch.arange(first, first + count, dtype=torch.float32)
    return images


def test_landmark_attack_scores_u_s_landmarks_against_the_photos():
    import numpy as np

    from privlens.attacks.suite import landmark_scores

    rng = np.random.default_rng(0)
    shapes = rng.uniform(10, 54, (1, 68, 2)) + rng.normal(0, 2.0, (16, 68, 2))  # 16 different faces
    identity = _IndexedLandmarks(shapes, missing={2})
    evaluated, own = _indexed_images(0, 6), _indexed_images(6, 10)

    def reader(images):  # U reading each capture's own landmarks, a little off
        return np.stack([shapes[k] for k in images[:, 0, 0, 0].long().tolist()]) + 0.05

    row, per_image, choice = landmark_scores(identity, reader, evaluated, evaluated, own, own)
    assert choice.value == 1.0  # a reader that is right needs no push from the mean
    assert row["faces"] == row["measured_faces"] == 5  # face 2 has no dlib face
    assert row["rank1"] == 1.0 and row["chance_rank1"] == pytest.approx(1 / 5)
    assert row["tar@far0.01"] == 1.0 and row["impostor_pairs"] == 90
    for key in ("psnr", "ssim", "identity_distance", "reidentified"):
        assert np.isnan(row[key]), key
    hits = per_image["rank1_hit"]
    assert torch.isnan(hits[2]) and hits[[0, 1, 3, 4, 5]].tolist() == [1.0] * 5

    def swapped(images):  # faces 0 and 1 read as each other
        points = reader(images)
        if images[0, 0, 0, 0] == 0:
            points[[0, 1]] = points[[1, 0]]
        return points

    row, per_image, _ = landmark_scores(identity, swapped, evaluated, evaluated, own, own)
    assert row["rank1"] == pytest.approx(3 / 5)
    assert per_image["rank1_hit"][[0, 1, 3]].tolist() == [0.0, 0.0, 1.0]


def test_landmark_attack_undoes_a_reader_s_pull_to_the_mean_by_tuning_on_its_own_faces():
    """Faces that differ from the mean by very different amounts, read by a U that keeps only 30 %
    of each difference: as read, every probe looks like the most average face (rank-1 at chance);
    pushed back from the mean by the factor that ranks the attacker's own faces best (2), every
    evaluated face is identified."""
    import numpy as np

    from privlens.attacks.suite import landmark_scores

    rng = np.random.default_rng(1)
    directions = rng.normal(0, 1, (60, 68, 2))
    directions /= np.linalg.norm(directions, axis=(1, 2), keepdims=True)
    shapes = rng.uniform(10, 54, (68, 2)) + rng.uniform(2, 30, (60, 1, 1)) * directions
    noise = rng.normal(0, 0.3, shapes.shape)
    identity = _IndexedLandmarks(shapes)
    evaluated, own = _indexed_images(0, 20), _indexed_images(20, 40)

    def cautious(images):
        keys = images[:, 0, 0, 0].long().tolist()
        return 0.3 * shapes[keys] + 0.7 * shapes[keys].mean(axis=0) + noise[keys]

    row, _, choice = landmark_scores(identity, cautious, evaluated, evaluated, own, own)
    assert choice.value == 2.0 and choice.candidates[2.0] < choice.candidates[1.0]
    assert row["rank1"] == 1.0 and "own faces" in choice.note


def test_landmark_attack_joins_the_suite_with_dlib_landmarks(faces):
    """Through the open lens, dlib's own landmarks on the capture (a perfect U) pick out nearly
    every photo; a U that reads one mean face for all picks out at most one."""
    import numpy as np

    from privlens.faces.landmarks import landmarks68

    attacker, evaluation = split_faces(faces[:22], 8)
    identity = OriginalBoxIdentity()
    box = (30, 30, 130, 130)  # the aligned crops' face, at the 160 px dlib works at

    def dlib_reader(images):
        big = torch.nn.functional.interpolate(images, size=(160, 160), mode="bicubic").clamp(0, 1)
        return np.stack([landmarks68(image, box) * 64 / 160 for image in big])

    settings = AttackSettings(attacks=("landmarks",), inversion=None, noise=CaptureNoise(False))
    camera = make_camera("open", 64)
    result = attack_lens("open", camera, attacker, evaluation, settings, identity, landmarks=dlib_reader)
    assert set(result.scores) == {"none", "landmarks"} and "landmarks" in result.choices
    row = result.scores["landmarks"]
    assert row["faces"] >= 6 and row["rank1"] >= 0.8
    mean_face = dlib_reader(evaluation).mean(axis=0)
    constant = attack_lens(
        "open",
        camera,
        attacker,
        evaluation,
        settings,
        identity,
        landmarks=lambda x: np.stack([mean_face] * len(x)),
    )
    assert constant.scores["landmarks"]["rank1"] * constant.scores["landmarks"]["faces"] <= 1


def test_landmark_attack_against_other_photos_of_the_same_people():
    """Each person's gallery photo has another pose: U's landmarks, which single out the captured
    photo itself, no longer point to the person (rank-1 far below the same-photo 1.0)."""
    import numpy as np

    from privlens.attacks.suite import EnrolledGallery, landmark_scores

    rng = np.random.default_rng(2)
    template = rng.uniform(10, 54, (68, 2))
    shapes = template + rng.normal(0, 2.0, (60, 68, 2))  # 0-19 evaluated, 20-59 attacker's own
    other_pose = template + rng.normal(0, 2.0, (20, 68, 2))  # the same 20 people, other photos
    identity = _IndexedLandmarks(np.concatenate([shapes, other_pose]))
    evaluated, own, photos = _indexed_images(0, 20), _indexed_images(20, 40), _indexed_images(60, 20)

    def reader(images):
        return np.stack([shapes[k] for k in images[:, 0, 0, 0].long().tolist()]) + 0.05

    people = [f"p{k}" for k in range(20)]
    same, _, _ = landmark_scores(identity, reader, evaluated, evaluated, own, own)
    enrolled = EnrolledGallery(photos, people, people)
    other, per_image, _ = landmark_scores(identity, reader, evaluated, evaluated, own, own, enrolled)
    assert same["rank1"] == 1.0 and other["chance_rank1"] == pytest.approx(1 / 20)
    assert other["rank1"] <= 0.3 and other["faces"] == 20
    assert float(per_image["rank1_hit"].mean()) == pytest.approx(other["rank1"])
    with pytest.raises(ValueError, match="without a gallery photo: p5"):
        EnrolledGallery(photos[:5], people[:5], people[:6])
