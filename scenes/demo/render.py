"""Ray-cast RGB, depth and instance images of a :class:`~vlm3r.scenes.demo.synthetic.SyntheticScene`.

Uses open3d's ``open3d.t.geometry.RaycastingScene`` (Embree), imported lazily. Cameras follow the
pinhole model ``u = fx * x / z + cx``, ``v = fy * y / z + cy`` with integer pixel coordinates at
pixel centres: the ray of pixel (u, v) has the camera-frame direction ``K^-1 [u, v, 1]`` (OpenCV
axes: x right, y down, z forward). Poses are camera-to-world 4x4 in the scene's aligned z-up world,
metres. Rendering is deterministic: no randomness, the texture is a function of the 3D hit point.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .synthetic import SyntheticScene

_INVALID_ID = np.uint32(0xFFFFFFFF)
_WORLD_LIGHT = (np.array([0.35, 0.2, 1.0]) / np.linalg.norm([0.35, 0.2, 1.0])).astype(np.float32)


def _open3d() -> Any:
    try:
        import open3d
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("open3d is required for rendering; install the extra: pip install 'vlm3r[geometry]'") from exc
    return open3d


@dataclass
class RenderedFrame:
    """One rendered view.

    ``rgb`` (H, W, 3) uint8: category colour x Lambertian shading x a procedural texture (0 = no hit);
    ``depth_mm`` (H, W) uint16: z-depth along the camera z axis in millimetres (0 = no hit);
    ``object_id`` (H, W) int64: aggregation objectId of the hit surface (-1 = no hit).
    """

    rgb: np.ndarray
    depth_mm: np.ndarray
    object_id: np.ndarray


@dataclass
class SceneRenderer:
    """Casts one ray per pixel against the scene mesh, built once per scene."""

    scene: SyntheticScene
    _rc: Any = field(init=False, repr=False)
    _face_object: np.ndarray = field(init=False, repr=False)
    _face_color: np.ndarray = field(init=False, repr=False)
    _dirs: dict[tuple[int, int, float, float, float, float], np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        o3d = _open3d()
        scene = self.scene
        mesh = o3d.t.geometry.TriangleMesh()
        mesh.vertex.positions = o3d.core.Tensor(np.ascontiguousarray(scene.vertices, dtype=np.float32))
        mesh.triangle.indices = o3d.core.Tensor(np.ascontiguousarray(scene.faces, dtype=np.int32))
        self._rc = o3d.t.geometry.RaycastingScene()
        self._rc.add_triangles(mesh)
        first = scene.faces[:, 0]
        # One extra entry at index F for rays that hit nothing.
        self._face_object = np.append(scene.vertex_object[first], -1).astype(np.int64)
        self._face_color = np.vstack([scene.vertex_colors[first], [[0, 0, 0]]]).astype(np.float32)
        self._dirs = {}

    def _camera_dirs(self, width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
        """(H*W, 3) float32 camera-frame ray directions K^-1 [u, v, 1] (z component 1), cached."""
        key = (width, height, fx, fy, cx, cy)
        if key not in self._dirs:
            v, u = np.mgrid[0:height, 0:width].astype(np.float64)
            d = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], axis=-1)
            self._dirs[key] = d.reshape(-1, 3).astype(np.float32)
        return self._dirs[key]

    def render(self, camera_to_world: np.ndarray, width: int, height: int, fx: float, fy: float, cx: float,
               cy: float, *, with_rgb: bool = True) -> RenderedFrame:
        """Render the view of a camera-to-world pose (aligned world, metres) for the given intrinsics
        (pixels). Because the ray directions have unit z in the camera frame, the hit parameter is the
        z-depth in metres. ``with_rgb=False`` skips shading (``rgb`` is then all zeros)."""
        o3d = _open3d()
        pose = np.asarray(camera_to_world, dtype=np.float64)
        rot, origin = pose[:3, :3].astype(np.float32), pose[:3, 3].astype(np.float32)
        cam = self._camera_dirs(width, height, fx, fy, cx, cy)
        rays = np.empty((cam.shape[0], 6), dtype=np.float32)
        rays[:, :3] = origin
        rays[:, 3:] = cam @ rot.T  # (matmul into a strided view would bypass BLAS)
        out = self._rc.cast_rays(o3d.core.Tensor.from_numpy(rays))
        t_hit = out["t_hit"].numpy()
        prim = out["primitive_ids"].numpy()
        hit = prim != _INVALID_ID
        face = np.where(hit, prim, len(self._face_object) - 1).astype(np.int64)
        t = np.where(hit, t_hit, np.float32(0.0))

        depth = np.clip(np.rint(t * np.float32(1000.0)), 0, 65535).astype(np.uint16)
        object_id = self._face_object[face]
        if with_rgb:
            rgb = self._shade(face, out["primitive_normals"].numpy(), rays[:, 3:], origin, t)
        else:
            rgb = np.zeros((cam.shape[0], 3), dtype=np.uint8)
        return RenderedFrame(
            rgb=rgb.reshape(height, width, 3),
            depth_mm=depth.reshape(height, width),
            object_id=object_id.reshape(height, width),
        )

    def _shade(self, face: np.ndarray, normals: np.ndarray, dirs: np.ndarray, origin: np.ndarray,
               t: np.ndarray) -> np.ndarray:
        """(M, 3) uint8 colours: base colour x (ambient + headlight + sky light) x a 25 cm 3D checker
        texture of the hit point (float32 throughout)."""
        inv_len = 1.0 / np.sqrt(np.einsum("ij,ij->i", dirs, dirs))
        head = np.abs(np.einsum("ij,ij->i", normals, dirs)) * inv_len
        sky = np.abs(normals @ _WORLD_LIGHT)
        shade = np.float32(0.3) + np.float32(0.5) * head + np.float32(0.2) * sky
        p = dirs * t[:, None]
        p += origin
        p *= np.float32(4.0)
        cells = np.floor(p, out=p).sum(axis=1)
        checker = cells - np.float32(2.0) * np.floor(cells * np.float32(0.5))
        shade *= np.float32(0.94) + np.float32(0.08) * checker
        rgb = self._face_color[face]
        rgb *= shade[:, None]
        np.clip(rgb, 0, 255, out=rgb)
        return (rgb + np.float32(0.5)).astype(np.uint8)

    def frames(self, width: int | None = None, height: int | None = None,
               intrinsics: tuple[float, float, float, float] | None = None) -> Iterator[RenderedFrame]:
        """Render every pose of the scene in order (depth size and intrinsics by default), lazily."""
        cfg = self.scene.config
        w = cfg.width if width is None else width
        h = cfg.height if height is None else height
        fx, fy, cx, cy = self.scene.intrinsics if intrinsics is None else intrinsics
        for pose in self.scene.camera_to_world:
            yield self.render(pose, w, h, fx, fy, cx, cy)


def render_all(scene: SyntheticScene) -> Iterator[RenderedFrame]:
    """Lazily render every frame of ``scene`` at its depth size and intrinsics."""
    return SceneRenderer(scene).frames()
