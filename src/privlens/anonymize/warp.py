"""The training-free backend: warp a reference face onto a target face geometry.

A new identity with the source's pose and expression needs no GAN: take a reference face whose 68
landmarks are known (dlib), and deform it so that its landmarks land on the target landmarks (the
ones U recovers from a capture). The deformation is piecewise affine:

1. a similarity (rotation, uniform scale, translation), fitted by least squares to the 68 point
   pairs, maps the target frame onto the reference roughly; it alone places the image border;
2. the target landmarks plus anchor points along the output border (mapped by that similarity)
   are triangulated (Delaunay, in target coordinates), and every triangle is mapped affinely onto
   the triangle of the corresponding reference points.

Inside the landmarks' hull the face follows the target geometry exactly (each landmark is a
triangle vertex, so it maps onto its reference landmark with no error beyond interpolation);
outside, the reference background follows the global similarity, blended continuously by the
triangles between the face and the border.

Conventions: landmarks are ``[68, 2]`` (x, y) pixels with the origin at the centre of the
top-left pixel (as :mod:`privlens.faces.landmarks`); images are float RGB ``[3, H, W]`` in [0, 1].
The warp uses backward mapping: for every output pixel, the reference position it samples
(bilinear, edge pixels replicated beyond the reference's border).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

BORDER_POINTS_PER_SIDE = 8


def _points(points: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    array = array.astype(np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 3:
        raise ValueError(f"{name} must be [K, 2] (x, y) points with K >= 3, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return array


def fit_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``[2, 3]`` taking ``source`` points onto ``target`` points.

    ``target ≈ s R source + t`` (no reflection). When the source points have no spread (all equal),
    the scale is 1 and only the translation between the centroids is kept.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mean_s, mean_t = source.mean(0), target.mean(0)
    cs, ct = source - mean_s, target - mean_t
    variance = (cs**2).sum() / len(source)
    if variance < 1e-9:
        rotation_scale = np.eye(2)
    else:
        covariance = ct.T @ cs / len(source)
        u, singular, vt = np.linalg.svd(covariance)
        sign = np.ones(2)
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            sign[-1] = -1.0
        rotation = u @ np.diag(sign) @ vt
        scale = float((singular * sign).sum() / variance)
        rotation_scale = scale * rotation if scale > 0 else np.eye(2)
    translation = mean_t - rotation_scale @ mean_s
    return np.concatenate([rotation_scale, translation[:, None]], axis=1)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def border_points(height: int, width: int, per_side: int = BORDER_POINTS_PER_SIDE) -> np.ndarray:
    """Anchors on the outer edge of an ``height x width`` image (pixel edges, not centres), so that
    every pixel centre lies strictly inside their hull: the corners plus ``per_side - 1`` evenly
    spaced points inside each side."""
    xs = np.linspace(-0.5, width - 0.5, per_side + 1)
    ys = np.linspace(-0.5, height - 0.5, per_side + 1)
    top = np.stack([xs, np.full_like(xs, -0.5)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 0.5)], 1)
    left = np.stack([np.full_like(ys[1:-1], -0.5), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 0.5), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right])


def _triangle_labels(
    target: np.ndarray, reference: np.ndarray, simplices: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle the ``[2, 3]`` affine map taking it (target points) onto its reference triangle,
    and an ``[H, W]`` int32 image of 1 + the index of the triangle covering each pixel (0: none).

    Triangles are rasterised with OpenCV at 1/256 px precision; a pixel on a shared edge takes one
    of the two triangles, whose maps agree on that edge. Flat triangles are left out."""
    labels = np.zeros((height, width), dtype=np.int32)
    if len(simplices) == 0:
        return np.zeros((0, 2, 3)), labels
    triangles = target[simplices]  # [T, 3, 2]
    source = np.concatenate([triangles, np.ones(triangles.shape[:2] + (1,))], axis=2)  # rows (x, y, 1)
    keep = np.abs(np.linalg.det(source)) > 1e-9
    triangles, source = triangles[keep], source[keep]
    maps = np.linalg.solve(source, reference[simplices[keep]]).transpose(0, 2, 1)  # [T, 2, 3]
    fixed = np.round(triangles * 256).astype(np.int32)
    for index, corners in enumerate(fixed, start=1):
        cv2.fillConvexPoly(labels, corners, index, lineType=cv2.LINE_8, shift=8)
    return maps, labels


def warp_map(
    reference_landmarks: torch.Tensor | np.ndarray,
    target_landmarks: torch.Tensor | np.ndarray,
    size: int | tuple[int, int],
) -> np.ndarray:
    """``[H, W, 2]`` float32 map: for every output pixel ``(x, y)``, the reference position to sample.

    ``size`` is the output ``H`` (= ``W`` for an int) or ``(H, W)``. The landmark arrays must have
    the same number of points in the same order.
    """
    from scipy.spatial import Delaunay, QhullError

    reference = _points(reference_landmarks, "reference landmarks")
    target = _points(target_landmarks, "target landmarks")
    if reference.shape != target.shape:
        raise ValueError(f"landmark counts differ: reference {reference.shape}, target {target.shape}")
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if height < 1 or width < 1:
        raise ValueError(f"output size must be positive, got {height}x{width}")
    to_reference = fit_similarity(target, reference)
    anchors = border_points(height, width)
    target_all = np.concatenate([target, anchors])
    reference_all = np.concatenate([reference, _apply(to_reference, anchors)])
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    try:
        simplices = Delaunay(target_all).simplices
    except (QhullError, ValueError):  # degenerate geometry (e.g. every landmark on one line)
        simplices = np.zeros((0, 3), dtype=int)
    # one affine map per triangle (label 0: the similarity, for pixels no triangle covers)
    maps, labels = _triangle_labels(target_all, reference_all, simplices, height, width)
    maps = np.concatenate([to_reference[None], maps])
    labels = labels.ravel()
    stacked = maps[labels]  # [H*W, 2, 3]
    mapped = np.einsum("nij,nj->ni", stacked[:, :, :2], pixels) + stacked[:, :, 2]
    mapped = mapped.reshape(height, width, 2)
    return mapped.astype(np.float32)


def _hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"reference image must be [3, H, W] RGB, got shape {tuple(image.shape)}")
        return np.ascontiguousarray(image.detach().float().cpu().numpy().transpose(1, 2, 0))
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"reference array must be H x W x 3, got shape {array.shape}")
    return np.ascontiguousarray(array.astype(np.float32))


def remap(image: torch.Tensor | np.ndarray, mapping: np.ndarray) -> torch.Tensor:
    """Sample ``image`` (``[3, h, w]`` tensor or ``h x w x 3`` float array in [0, 1]) at ``mapping``
    (``[H, W, 2]`` from :func:`warp_map`): bilinear, edges replicated; returns ``[3, H, W]``."""
    import cv2

    out = cv2.remap(
        _hwc(image),
        np.ascontiguousarray(mapping[..., 0]),
        np.ascontiguousarray(mapping[..., 1]),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return torch.from_numpy(np.clip(out, 0.0, 1.0).transpose(2, 0, 1).copy())


def warp_reference(
    reference_image: torch.Tensor | np.ndarray,
    reference_landmarks: torch.Tensor | np.ndarray,
    target_landmarks: torch.Tensor | np.ndarray,
    size: int | tuple[int, int] | None = None,
) -> torch.Tensor:
    """The reference face deformed onto the target geometry: float RGB ``[3, H, W]`` in [0, 1].

    Args:
        reference_image: ``[3, h, w]`` float RGB in [0, 1] (or an ``h x w x 3`` float array).
        reference_landmarks: ``[68, 2]`` (x, y) landmarks of the reference, in its pixels.
        target_landmarks: ``[68, 2]`` (x, y) landmarks of the wanted geometry, in output pixels.
        size: output ``H`` (= ``W``) or ``(H, W)``; default: the reference's size.

    After the warp, reference landmark ``k`` sits at target landmark ``k`` (see the module notes).
    """
    array = _hwc(reference_image)
    if size is None:
        size = (array.shape[0], array.shape[1])
    return remap(array, warp_map(reference_landmarks, target_landmarks, size))


def warp_batch(
    references: torch.Tensor, reference_landmarks: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """:func:`warp_reference` for a batch: references ``[B, 3, S, S]`` with their landmarks
    ``[B, 68, 2]`` warped onto ``targets`` ``[B, 68, 2]`` (pixels), ``[B, 3, S, S]`` on the
    references' device. This is the content a ``content="warp"`` generator reads."""
    if references.dim() != 4 or references.shape[-1] != references.shape[-2]:
        raise ValueError(f"references must be [B, 3, S, S], got {tuple(references.shape)}")
    size = references.shape[-1]
    warped = [
        warp_reference(image, points, target, size)
        for image, points, target in zip(
            references.detach().float().cpu(), reference_landmarks.cpu(), targets.detach().cpu(), strict=True
        )
    ]
    return torch.stack(warped).to(references.device)
