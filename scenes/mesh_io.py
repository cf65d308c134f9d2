"""Reading triangle meshes (PLY) the way every adapter needs them: fast, with errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from vlm3r.scenes.base import SceneError


def read_ply(path: Path):  # noqa: ANN201 - plyfile.PlyData
    """Read a ply; triangle faces take plyfile's fast fixed-length path, other meshes the general one."""
    from plyfile import PlyData

    try:
        return PlyData.read(str(path), known_list_len={"face": {"vertex_indices": 3}})
    except Exception:
        return PlyData.read(str(path))


def read_mesh(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(V, 3) float64 vertices and (F, 3) int64 triangles of a PLY mesh, read once (faces None when
    the file has no faces or not only triangles); SceneError naming the file when it is missing or
    malformed."""
    if not path.is_file():
        raise SceneError(path, "missing mesh")
    try:
        ply = read_ply(path)
        v = ply["vertex"]
        points = np.stack([np.asarray(v["x"]), np.asarray(v["y"]), np.asarray(v["z"])], axis=1).astype(np.float64)
        faces = None
        if "face" in {e.name for e in ply.elements}:
            tri = ply["face"].data["vertex_indices"]
            if tri.dtype != object:
                faces = np.asarray(tri, dtype=np.int64).reshape(-1, 3)
    except Exception as exc:
        raise SceneError(path, f"unreadable mesh ({exc})") from exc
    if len(points) == 0:
        raise SceneError(path, "mesh has no vertices")
    if not np.isfinite(points).all():
        raise SceneError(path, "mesh vertices contain NaN or inf")
    if faces is not None and len(faces) and (faces.min() < 0 or faces.max() >= len(points)):
        raise SceneError(path, f"faces reference vertices outside 0..{len(points) - 1}")
    return points, faces
