"""Locating and loading the face models that ship inside installed packages (nothing is downloaded).

dlib's models come from the ``face_recognition_models`` distribution. Its ``__init__`` imports
``pkg_resources`` (gone from recent setuptools), so privlens finds its ``models/`` folder with
:func:`importlib.util.find_spec` and never imports it. MTCNN's P/R/O-nets ship inside
``facenet-pytorch``. Every loader is cached: one instance per process.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

DLIB_MODEL_FILES = {
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "mmod": "mmod_human_face_detector.dat",
}


class FaceModelError(RuntimeError):
    """A face model (dlib or MTCNN) is not installed or cannot be loaded."""


def dlib_models_dir() -> Path:
    """The ``models/`` folder of the installed ``face_recognition_models`` distribution."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelError("the dlib face models are missing: pip install face_recognition_models==0.3.0")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def dlib_model_path(kind: str) -> Path:
    """Path of one dlib model file: ``shape68``, ``shape5``, ``recognition`` or ``mmod``."""
    if kind not in DLIB_MODEL_FILES:
        raise ValueError(f"unknown dlib model {kind!r}; expected one of {sorted(DLIB_MODEL_FILES)}")
    path = dlib_models_dir() / DLIB_MODEL_FILES[kind]
    if not path.is_file():
        raise FaceModelError(f"dlib model file not found: {path} (reinstall face_recognition_models)")
    return path


def _dlib():
    try:
        import dlib
    except ImportError as error:  # pragma: no cover - dlib-bin is a hard dependency
        raise FaceModelError("dlib is not installed: pip install dlib-bin") from error
    return dlib


@lru_cache(maxsize=1)
def hog_detector():
    """dlib's frontal face detector (HOG + linear SVM)."""
    return _dlib().get_frontal_face_detector()


@lru_cache(maxsize=1)
def cnn_detector():
    """dlib's CNN face detector (max-margin object detection, ``mmod_human_face_detector``)."""
    return _dlib().cnn_face_detection_model_v1(str(dlib_model_path("mmod")))


@lru_cache(maxsize=1)
def shape_predictor_68():
    """dlib's 68-point shape predictor (iBUG 300-W layout)."""
    return _dlib().shape_predictor(str(dlib_model_path("shape68")))


@lru_cache(maxsize=1)
def face_recognizer():
    """dlib's face-recognition ResNet (128-d embeddings; the face_recognition library's model)."""
    return _dlib().face_recognition_model_v1(str(dlib_model_path("recognition")))


@lru_cache(maxsize=1)
def mtcnn():
    """facenet-pytorch's MTCNN on the CPU, returning every face (``keep_all``)."""
    try:
        from facenet_pytorch import MTCNN
    except ImportError as error:
        raise FaceModelError(
            f"MTCNN needs facenet-pytorch: pip install --no-deps facenet-pytorch==2.6.0 ({error})"
        ) from error
    model = MTCNN(keep_all=True, device="cpu")
    model.eval()
    return model
