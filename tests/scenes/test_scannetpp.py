"""The ScanNet++ adapter on synthetic scenes written in the ScanNet++ layout (both depth.bin
variants, video and extracted frames, COLMAP poses), its bad-input errors and a whole build."""

import json
import shutil
import zlib

import numpy as np
import pytest

from vlm3r.pipelines.build import BuildConfig, build, load_scene_graph
from vlm3r.scenes.base import AdapterConfig, SceneError, sample_frame_ids
from vlm3r.scenes.registry import make_adapter
from vlm3r.scenes.categories import source_category
from vlm3r.scenes.demo.ground_truth import expected_objects
from vlm3r.scenes.scannetpp import ScanNetPPAdapter, annotation_obbs, quaternion_to_matrix
from vlm3r.scenes.demo.scannetpp_layout import write_scannetpp_scene
from vlm3r.scenes.demo.synthetic import SyntheticConfig, make_scene

SID = "0a1b2c3d4e"
CFG = AdapterConfig(num_frames=8)
TINY = SyntheticConfig(n_frames=32, width=160, height=120, mesh_resolution=0.06, n_objects=(6, 9))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(ground truth, {variant: root}) for the two layout variants of one scene."""
    base = tmp_path_factory.mktemp("scannetpp")
    gt = make_scene(SID, seed=3, config=TINY)
    roots = {}
    for rgb, depth in (("mkv", "stream"), ("jpg", "per_frame_deflate"), ("mp4", "per_frame_lz4")):
        roots[(rgb, depth)] = base / f"{rgb}-{depth}"
        write_scannetpp_scene(gt, roots[(rgb, depth)], rgb=rgb, depth=depth)
    return gt, roots


@pytest.fixture(scope="module")
def loaded(written):
    gt, roots = written
    return gt, {variant: ScanNetPPAdapter(root).load(SID, CFG) for variant, root in roots.items()}


def copy_scene(root, tmp_path):
    shutil.copytree(root / "data" / SID, tmp_path / "data" / SID)
    return tmp_path, tmp_path / "data" / SID


def test_variants_give_the_same_graph(loaded):
    gt, by_variant = loaded
    a, *others = by_variant.values()
    for b in others:
        assert a.scene.objects == b.scene.objects
        assert [f.model_dump() for f in a.frames.frames] == [f.model_dump() for f in b.frames.frames]
        for fid in a.images:  # lossy video vs JPEG, both close to the render
            assert np.abs(a.images[fid].astype(int) - b.images[fid].astype(int)).mean() < 6


def test_frames_poses_and_objects(loaded):
    gt, by_variant = loaded
    a = by_variant[("mkv", "stream")]
    valid = np.setdiff1d(np.arange(gt.n_frames), gt.invalid_pose_frames)
    assert [f.frame_id for f in a.frames.frames] == sample_frame_ids(valid, CFG.num_frames).tolist()
    assert a.frames.num_stream_frames == gt.n_frames and a.frames.num_valid_frames == len(valid)
    for f in a.frames.frames:
        np.testing.assert_allclose(f.pose(), gt.camera_to_world[f.frame_id], atol=1e-6)
        assert f.timestamp_s == pytest.approx(f.frame_id / gt.config.fps)
    assert a.frames.visibility_source == "depth_projection"
    assert sum(len(f.visible) for f in a.frames.frames) > 0
    want = expected_objects(gt, "scannetpp")
    assert [(o.instance_id, o.category) for o in a.scene.objects] == [(e.instance_id, e.category) for e in want]
    assert a.scene.raw_to_world == np.eye(4).tolist()
    assert a.scene.mesh_file == f"data/{SID}/scans/mesh_aligned_0.05.ply"
    assert f"data/{SID}/iphone/depth.bin" in a.scene.source_files


def test_annotation_obb_cross_checks_the_computed_boxes(written, loaded):
    gt, roots = written
    a = loaded[1][("mkv", "stream")]
    obbs = annotation_obbs(roots[("mkv", "stream")] / "data" / SID / "scans" / "segments_anno.json")
    for o in a.scene.objects:
        assert np.abs(np.asarray(obbs[o.instance_id].centroid) - o.box.centroid).max() < 0.02
        assert np.abs(np.sort(obbs[o.instance_id].axes_lengths) - np.sort(o.box.axes_lengths)).max() < 0.02


def test_colmap_poses_equal_the_json_poses(written, loaded):
    gt, roots = written
    json_frames = loaded[1][("mkv", "stream")].frames
    colmap = ScanNetPPAdapter(roots[("mkv", "stream")], pose_source="colmap").load(SID, CFG).frames
    assert [f.frame_id for f in colmap.frames] == [f.frame_id for f in json_frames.frames]
    for f, g in zip(colmap.frames, json_frames.frames):
        np.testing.assert_allclose(f.pose(), g.pose(), atol=1e-9)
        assert [v.instance_id for v in f.visible] == [v.instance_id for v in g.visible]


def test_fps_subsample(written):
    gt, roots = written
    fm = ScanNetPPAdapter(roots[("jpg", "per_frame_deflate")]).load(SID, AdapterConfig(fps_subsample=5.0)).frames
    ts = np.array([f.timestamp_s for f in fm.frames])
    assert len(fm.frames) == pytest.approx(gt.n_frames / gt.config.fps * 5.0, abs=1.5)
    assert np.all(np.abs(np.diff(ts) - 0.2) <= 1.5 / gt.config.fps)
    assert not {f.frame_id for f in fm.frames} & set(gt.invalid_pose_frames.tolist())


def test_quaternion_to_matrix_matches_scipy():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    for q in rng.normal(size=(5, 4)):
        x, y, z, w = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_quat()
        np.testing.assert_allclose(quaternion_to_matrix(q), Rotation.from_quat([x, y, z, w]).as_matrix(), atol=1e-12)


def test_scannetpp_vocabulary_is_its_own():
    """ScanNet++ names stay its own (trash can, table lamp, heater, kettle ...); office chair and
    ceiling lamp are renamed; window, towel, cabinet ... are dropped."""
    own = ("trash can", "table lamp", "heater", "kettle", "suitcase", "whiteboard", "power strip")
    assert [source_category("scannetpp", c) for c in own] == list(own)
    assert source_category("scannetpp", "office chair") == "chair"
    assert source_category("scannetpp", "ceiling lamp") == "ceiling light"
    assert source_category("scannetpp", "mouse") == "computer mouse"
    assert [source_category("scannetpp", c) for c in ("window", "towel", "cabinet", "blinds")] == [None] * 4


def test_missing_iphone_data_is_named(written, tmp_path):
    root, d = copy_scene(written[1][("jpg", "per_frame_deflate")], tmp_path)
    shutil.rmtree(d / "iphone")
    with pytest.raises(SceneError, match=r"iphone/pose_intrinsic_imu\.json: missing iPhone data"):
        ScanNetPPAdapter(root).load(SID, CFG)


def test_wrong_size_depth_frame_is_named(written, tmp_path):
    root, d = copy_scene(written[1][("jpg", "per_frame_deflate")], tmp_path)
    path = d / "iphone" / "depth.bin"
    data = path.read_bytes()
    n = int.from_bytes(data[:4], "little")
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    small = c.compress(np.zeros((60, 80), "<f4").tobytes()) + c.flush()  # frame 0: 80x60, others 160x120
    path.write_bytes(len(small).to_bytes(4, "little") + small + data[4 + n:])
    with pytest.raises(SceneError, match=r"depth\.bin: frame \d+: depth of 19200 pixels, expected 80x60"):
        ScanNetPPAdapter(root).load(SID, CFG)


def test_truncated_depth_stream_is_named(written, tmp_path):
    root, d = copy_scene(written[1][("mkv", "stream")], tmp_path)
    path = d / "iphone" / "depth.bin"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SceneError, match=r"depth\.bin: "):
        ScanNetPPAdapter(root).load(SID, CFG)


def test_malformed_pose_json_is_named(written, tmp_path):
    root, d = copy_scene(written[1][("jpg", "per_frame_deflate")], tmp_path)
    path = d / "iphone" / "pose_intrinsic_imu.json"
    data = json.loads(path.read_text())
    del data["frame_000004"]["aligned_pose"]
    path.write_text(json.dumps(data))
    with pytest.raises(SceneError, match=r"pose_intrinsic_imu\.json: frame_000004: needs aligned_pose"):
        ScanNetPPAdapter(root).load(SID, CFG)


def test_build_through_the_registry(written, tmp_path):
    root = written[1][("mkv", "stream")]
    summary = build(make_adapter("scannetpp", root), BuildConfig(out=tmp_path, adapter=CFG, write_video=False))
    assert summary.scenes_ok == 1 and not summary.skipped
    scene, frames = load_scene_graph(tmp_path, "scannetpp", SID)
    assert scene.dataset == "scannetpp" and len(frames.frames) == CFG.num_frames
    assert all((tmp_path / f.color_path).is_file() for f in frames.frames)
    assert sum(summary.qa_per_task.values()) > 0


def test_every_official_depth_variant_reads_metres(written):
    """The three depth.bin variants of the official decoder (one deflate stream of float32 m; per frame
    LZ4 uint16 mm; per frame deflate float32 m) all read as the renderer's depth in metres."""
    from vlm3r.scenes.demo.scannet_layout import rendered_frames
    from vlm3r.scenes.scannetpp import DepthBin

    gt, roots = written
    frames = [0, 5, gt.n_frames - 1]
    truth = {i: f.depth_mm.astype(np.float32) / 1000.0 for i, (f, _) in enumerate(rendered_frames(gt, False)) if i in frames}
    aspect = gt.config.width / gt.config.height
    for variant, root in roots.items():
        got = DepthBin(root / "data" / SID / "iphone" / "depth.bin", gt.n_frames, aspect, None).read(frames)
        for i in frames:
            np.testing.assert_allclose(got[i], truth[i], atol=1e-6, err_msg=str(variant))
        assert 0.3 < float(np.median(got[frames[0]][got[frames[0]] > 0])) < 10.0  # metres, not millimetres


def test_rgb_folder_with_only_some_frames(written, tmp_path):
    """An rgb/ folder holding only some frames (COLMAP frames only): only frames with both a pose and an
    image are sampled."""
    gt, roots = written
    root, d = copy_scene(roots[("jpg", "per_frame_deflate")], tmp_path)
    kept = set(range(0, gt.n_frames, 3))
    for jpg in (d / "iphone" / "rgb").iterdir():
        if int(jpg.stem.split("_")[1]) not in kept:
            jpg.unlink()
    a = ScanNetPPAdapter(root).load(SID, CFG)
    valid = np.array(sorted(kept - set(gt.invalid_pose_frames.tolist())))
    assert [f.frame_id for f in a.frames.frames] == sample_frame_ids(valid, CFG.num_frames).tolist()
    assert a.frames.num_valid_frames == len(valid)


def test_intrinsics_scaled_as_the_toolkit_scales_them():
    from vlm3r.scenes.readers import scale_intrinsics_to

    k = np.array([[1440.0, 0, 960.0], [0, 1440.0, 720.0], [0, 0, 1]])
    np.testing.assert_allclose(scale_intrinsics_to(k, (1920, 1440), (256, 192)),
                               [[192.0, 0, 128.0], [0, 192.0, 96.0], [0, 0, 1]])


def test_single_stream_depth_reads_frames_through_resume_points(tmp_path, monkeypatch):
    """Frames read after the one-pass scan (resuming from decompressor snapshots) equal the frames of
    a plain full inflate, whichever snapshot they resume from."""
    from vlm3r.scenes import scannetpp

    rng = np.random.default_rng(0)
    n, w, h = 40, 16, 12
    frames = rng.uniform(0.5, 4.0, size=(n, h, w)).astype("<f4")
    frames[3, 0, 0] = np.nan
    comp = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    path = tmp_path / "depth.bin"
    path.write_bytes(comp.compress(frames.tobytes()) + comp.flush())
    monkeypatch.setattr(scannetpp, "SNAPSHOT_BYTES", 3 * w * h * 4 + 7)  # many points, not frame-aligned
    monkeypatch.setattr(scannetpp, "_INPUT_CHUNK", 97)
    depth = scannetpp.DepthBin(path, num_frames=n, aspect=w / h, depth_size=None)
    wanted = [0, 3, 4, 17, 18, 39]
    got = depth.read(wanted)
    assert depth.size == (w, h)
    want = np.nan_to_num(frames, nan=0.0)
    for k in wanted:
        np.testing.assert_array_equal(got[k], want[k])
    with pytest.raises(scannetpp.SceneError, match="ends before frame 40"):
        scannetpp.DepthBin(path, num_frames=n, aspect=w / h, depth_size=(w, h)).read([40])


def test_pose_source_on_the_command_line(written, tmp_path):
    from typer.testing import CliRunner

    from vlm3r.cli import data_app

    root = written[1][("mkv", "stream")]
    res = CliRunner().invoke(data_app, ["build", "--dataset", "scannetpp", "--root", str(root), "--out", str(tmp_path),
                                        "--pose-source", "colmap", "--frames", "4", "--no-video", "--tasks", "object_counting"])
    assert res.exit_code == 0, res.output
    scene, _ = load_scene_graph(tmp_path, "scannetpp", SID)
    assert f"data/{SID}/iphone/colmap/images.txt" in scene.source_files
    bad = CliRunner().invoke(data_app, ["build", "--dataset", "scannet", "--root", str(root), "--out", str(tmp_path / "x"),
                                        "--pose-source", "colmap"])
    assert bad.exit_code == 2 and "pose source" in bad.output
