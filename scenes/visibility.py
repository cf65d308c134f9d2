"""Which instances a frame sees, with their 2D boxes and pixel counts.

Two sources, same output (``VisibleInstance`` sorted by instance id):
- instance masks (ScanNet's 2D instance PNGs, value = objectId + 1);
- depth-tested projection of the instances' mesh vertices (any dataset with depth).
Pixel coordinates: integer columns (x) and rows (y) of the image; boxes are inclusive.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from scipy import ndimage
from vlm3r.schemas.scene import VisibleInstance


def visible_from_mask(
    mask: np.ndarray, instance_ids: Collection[int], min_pixels: int = 1, offset: int = 1
) -> list[VisibleInstance]:
    """Visibility from an (H, W) integer mask whose value is ``instance_id + offset`` (0 = none).

    Only ids in ``instance_ids`` are reported, and only with at least ``min_pixels`` pixels.
    """
    labels = np.asarray(mask).astype(np.int64) - offset + 1  # label k <-> instance k - 1
    labels[labels < 1] = 0
    counts = np.bincount(labels.ravel())
    slices = ndimage.find_objects(labels)
    out = []
    for inst in sorted(instance_ids):
        k = inst + 1
        if k >= len(counts) or counts[k] < min_pixels or slices[k - 1] is None:
            continue
        rows, cols = slices[k - 1]
        out.append(
            VisibleInstance(
                instance_id=inst,
                bbox_2d=[cols.start, rows.start, cols.stop - 1, rows.stop - 1],
                pixel_count=int(counts[k]),
            )
        )
    return out


def depth_tolerance(z: np.ndarray) -> np.ndarray:
    """Depth agreement tolerance (metres) for a point at depth ``z``: 5 cm, growing 2% with depth."""
    return np.maximum(0.05, 0.02 * z)


def visible_from_projection(
    points: np.ndarray,
    point_instance: np.ndarray,
    camera_to_world: np.ndarray,
    intrinsics: np.ndarray,
    depth_m: np.ndarray,
    min_pixels: int = 1,
    faces: np.ndarray | None = None,
) -> list[VisibleInstance]:
    """Visibility by projecting instance points into a frame and keeping those whose depth agrees
    with the frame's depth map.

    points: (V, 3) world metres; point_instance: (V,) instance id per point (< 0: ignore);
    camera_to_world: (4, 4) OpenCV; intrinsics: (3, 3) for ``depth_m`` (H, W) in metres (0 = no depth).
    An instance's pixel count is the number of distinct pixels its surviving points land on, and the
    2D box spans those pixels. With ``faces`` (F, 3) vertex indices of the mesh, the count is at
    least the projected area (pixels, clipped to the image) of the instance's triangles whose
    vertices all survive or lie in front of the camera outside the image (at least one surviving),
    and the box covers those triangles too: a sparse mesh seen from nearby or cut by the image
    border covers many more pixels than it has vertices inside the image.
    """
    h, w = depth_m.shape
    world_to_cam = np.linalg.inv(camera_to_world)
    idx = np.flatnonzero(point_instance >= 0)
    cam = points[idx] @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    front = z > 1e-3
    idx, cam, z = idx[front], cam[front], z[front]
    uf = intrinsics[0, 0] * cam[:, 0] / z + intrinsics[0, 2]
    vf = intrinsics[1, 1] * cam[:, 1] / z + intrinsics[1, 2]
    u = np.floor(uf + 0.5).astype(np.int64)
    v = np.floor(vf + 0.5).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    ok = np.zeros(len(idx), dtype=bool)
    d = depth_m[v[inside], u[inside]]
    ok[inside] = (d > 0) & (np.abs(z[inside] - d) <= depth_tolerance(d))
    if not ok.any():
        return []
    inst = point_instance[idx[ok]]
    # Distinct (instance, pixel) pairs, then per-instance counts and bounds.
    key = np.unique(inst * (h * w) + v[ok] * w + u[ok])
    inst_u, pix = key // (h * w), key % (h * w)
    ys, xs = pix // w, pix % w
    ids, start, counts = np.unique(inst_u, return_index=True, return_counts=True)
    xmin = np.minimum.reduceat(xs, start)
    xmax = np.maximum.reduceat(xs, start)
    ymin = np.minimum.reduceat(ys, start)
    ymax = np.maximum.reduceat(ys, start)
    if faces is not None and len(faces):
        state = np.zeros(len(point_instance), dtype=np.int8)  # 0 hidden or behind, 1 survives, 2 off-image
        state[idx[~inside]] = 2
        state[idx[ok]] = 1
        slot = np.full(len(point_instance), -1, dtype=np.int64)
        slot[idx] = np.arange(len(idx))
        tri = _countable_triangles(np.asarray(faces), point_instance, state)
        if len(tri):
            cu = np.clip(uf, -0.5, w - 0.5)
            cv = np.clip(vf, -0.5, h - 0.5)
            pos = np.searchsorted(ids, point_instance[tri[:, 0]])
            a, b, c = slot[tri[:, 0]], slot[tri[:, 1]], slot[tri[:, 2]]
            cross = (cu[b] - cu[a]) * (cv[c] - cv[a]) - (cv[b] - cv[a]) * (cu[c] - cu[a])
            area = np.bincount(pos, weights=0.5 * np.abs(cross), minlength=len(ids))
            counts = np.maximum(counts, np.rint(area).astype(np.int64))
            for corner in (a, b, c):
                px = np.clip(np.floor(cu[corner] + 0.5), 0, w - 1).astype(np.int64)
                py = np.clip(np.floor(cv[corner] + 0.5), 0, h - 1).astype(np.int64)
                np.minimum.at(xmin, pos, px)
                np.maximum.at(xmax, pos, px)
                np.minimum.at(ymin, pos, py)
                np.maximum.at(ymax, pos, py)
    return [
        VisibleInstance(instance_id=int(i), bbox_2d=[int(a), int(b), int(c), int(d_)], pixel_count=int(n))
        for i, a, b, c, d_, n in zip(ids, xmin, ymin, xmax, ymax, counts)
        if n >= min_pixels
    ]


def instance_faces(faces: np.ndarray, point_instance: np.ndarray) -> np.ndarray:
    """The (T, 3) faces whose three vertices belong to the same instance (>= 0): the only ones
    :func:`visible_from_projection` measures, so callers can filter once per scene."""
    faces = np.asarray(faces, dtype=np.int64)
    inst = point_instance[faces]
    return faces[(inst[:, 0] >= 0) & (inst[:, 0] == inst[:, 1]) & (inst[:, 0] == inst[:, 2])]


def _countable_triangles(faces: np.ndarray, point_instance: np.ndarray, state: np.ndarray) -> np.ndarray:
    """(T, 3) faces of one instance whose vertices all survive (state 1) or lie off-image in front
    of the camera (state 2), with at least one surviving."""
    st = state[faces]
    keep = (st > 0).all(axis=1) & (st == 1).any(axis=1)
    return instance_faces(faces[keep], point_instance)
