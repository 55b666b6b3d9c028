import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from privlens.eval import MetricUnavailableError, WeightsFileError, identity_distances, make_embedder
from privlens.eval.identity import DlibEmbedder, FacenetEmbedder, identity_distance, load_facenet


def test_dlib_distance_mirror_is_same_person_and_other_faces_are_not(astro, lfw):
    embedder = DlibEmbedder()
    original, mirror = embedder.embed([astro, astro.flip(-1)])
    others = [e for e in embedder.embed(list(lfw[:8])) if e is not None]
    assert original.shape == (128,) and len(others) >= 7
    same = identity_distance(original, mirror)
    different = [identity_distance(original, other) for other in others]
    assert same < 0.6  # measured 0.20
    assert min(different) > 0.6  # measured 0.66 (closest of all 94 found) to 0.9
    assert identity_distance(original, original) == 0.0


def test_identity_distances_mark_missing_faces(astro, lfw, non_faces):
    small = torch.nn.functional.interpolate(astro[None], size=256, mode="area")[0]
    result = identity_distances([small, lfw[0], lfw[1]], [small.flip(-1), non_faces[0], lfw[1]], "dlib")
    assert result[0] < 0.6 and result[1] is None and result[2] == pytest.approx(0.0, abs=1e-9)


def test_facenet_offline_is_unavailable_with_the_documented_message(offline):
    for backend, option, env in (
        ("facenet-vggface2", "--facenet-vggface2-weights", "$PRIVLENS_FACENET_VGGFACE2"),
        ("facenet-casia", "--facenet-casia-weights", "$PRIVLENS_FACENET_CASIA"),
    ):
        with pytest.raises(MetricUnavailableError) as caught:
            make_embedder(backend)
        message = str(caught.value)
        assert message.startswith(
            f"{backend} unavailable: no local weights, and the library's cache or download of https://"
        )
        assert option in message and env in message
        assert caught.value.metric == backend


def _random_facenet_weights(tmp_path, suffix):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(1)
    model = InceptionResnetV1(pretrained=None, classify=True, num_classes=7).eval()
    state = model.state_dict()  # includes logits.* like the published files
    path = tmp_path / f"facenet{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    model.classify = False
    return model, path


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_facenet_loads_local_weights_from_option_and_env(tmp_path, monkeypatch, offline, astro, suffix):
    reference, path = _random_facenet_weights(tmp_path, suffix)
    loaded = load_facenet("facenet-vggface2", path)
    x = torch.rand(2, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(loaded(x), reference(x), atol=1e-6)
    monkeypatch.setenv("PRIVLENS_FACENET_CASIA", str(path))
    embedder = make_embedder("facenet-casia")
    assert isinstance(embedder, FacenetEmbedder)
    face = astro[:, 30:222, 125:317]
    first, mirror = embedder.embed([face, face.clone()])
    assert first.shape == (512,) and np.linalg.norm(first) == pytest.approx(1.0, abs=1e-5)
    assert identity_distance(first, mirror) == pytest.approx(0.0, abs=1e-6)


def test_facenet_bad_local_files_are_user_errors(tmp_path):
    with pytest.raises(WeightsFileError, match="not found"):
        load_facenet("facenet-vggface2", tmp_path / "missing.pt")
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": object.__new__(FacenetEmbedder)}, pickled)  # needs unpickling: refused
    with pytest.raises(WeightsFileError, match="not a readable state dict"):
        load_facenet("facenet-vggface2", pickled)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"conv.weight": torch.zeros(2, 2)}, str(wrong))
    with pytest.raises(WeightsFileError, match="not InceptionResnetV1 weights"):
        load_facenet("facenet-casia", wrong)
    with pytest.raises(ValueError, match="unknown identity backend"):
        make_embedder("arcface")
