"""Pictures: what is drawn is checked against the synthetic scene's ground truth (box footprints,
room outline, camera centres, 2D boxes), the distribution rings against the counts, and the HTML
report for being self-contained."""

import base64
import re

import numpy as np
import pytest
import shapely
from typer import Typer
from typer.testing import CliRunner

from vlm3r.pipelines.report import visualize as viz
from vlm3r.cli import visualize_command
from vlm3r.schemas.io import read_qa_records

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCENE = "scene0001_00"


@pytest.fixture(scope="module")
def built(scannet_root, tmp_path_factory):
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, scenes = scannet_root
    out = tmp_path_factory.mktemp("viz_build")
    build(ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), write_video=False), [SCENE])
    return out, scenes[SCENE]


def by_gid(ax, prefix):
    items = list(ax.patches) + list(ax.lines) + list(ax.texts)
    return {a.get_gid(): a for a in items if (a.get_gid() or "").startswith(prefix)}


def test_scene_picture_matches_ground_truth(built, tmp_path):
    out, truth = built
    scene, frames = viz.load_scene(out, "scannet", SCENE)
    pts = viz.mesh_points_xy(scene)
    assert pts is not None and pts.shape[1] == 2
    fig = viz.scene_figure(scene, frames, pts)
    ax = fig.axes[0]

    # room outline from the mesh: the true room polygon, up to a few percent
    outline = shapely.Polygon(by_gid(ax, "room-outline")["room-outline"].get_xy())
    room = shapely.Polygon(truth.room_polygon)
    assert outline.symmetric_difference(room).area < 0.05 * room.area

    # one footprint per object, equal to the true box's footprint
    boxes = by_gid(ax, "box-")
    assert len(boxes) == len(truth.objects) == len(scene.objects)
    for obj in truth.objects:
        drawn = shapely.Polygon(boxes[f"box-{obj.instance_id}"].get_xy())
        true_fp = shapely.MultiPoint(obj.corners()[:, :2]).convex_hull
        assert drawn.symmetric_difference(true_fp).area < 0.02 * max(true_fp.area, 1e-3), obj.category
        label = by_gid(ax, f"label-{obj.instance_id}")[f"label-{obj.instance_id}"]
        assert label.get_text() == f"{obj.category} #{obj.instance_id}"
        assert np.allclose(label.get_position(), obj.centroid[:2], atol=0.02)

    # camera path through the true camera centres of the sampled frames, in order
    path = by_gid(ax, "camera-path")["camera-path"]
    true_centres = truth.camera_to_world[[f.frame_id for f in frames.frames], :3, 3]
    assert np.allclose(np.c_[path.get_xdata(), path.get_ydata()], true_centres[:, :2], atol=1e-4)
    numbers = by_gid(ax, "frame-")
    assert {"frame-1", f"frame-{len(frames.frames)}"} <= set(numbers)

    png = viz.save_png(fig, tmp_path / "scene.png")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 20_000


def test_scene_picture_without_mesh_draws_the_extent(built):
    out, truth = built
    scene, frames = viz.load_scene(out, "scannet", SCENE)
    ax = viz.scene_figure(scene, frames, None).axes[0]
    assert "room-outline" not in by_gid(ax, "room-outline")
    xy = by_gid(ax, "extent")["extent"].get_xy()
    corners = np.concatenate([o.corners()[:, :2] for o in truth.objects])
    assert xy[:, 0].min() <= corners[:, 0].min() + 1e-6 and xy[:, 0].max() >= corners[:, 0].max() - 1e-6


def test_room_outline_of_an_l_shape():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 4, (6000, 2))
    pts = pts[~((pts[:, 0] > 2) & (pts[:, 1] > 2))]  # L: 16 - 4 = 12 m^2
    ring = viz.room_outline(pts)
    assert shapely.Polygon(ring).area == pytest.approx(12.0, rel=0.05)
    assert viz.room_outline(np.zeros((2, 2))) is None


def test_numbering_keeps_numbers_apart():
    xy = np.c_[np.linspace(0, 1, 50), np.zeros(50)]
    keep = viz._numbered(xy, min_sep=0.1)
    assert keep[0] == 0 and keep[-1] == 49
    gaps = np.diff(xy[keep[:-1], 0])
    assert np.all(gaps >= 0.1 - 1e-9) and len(keep) <= 12
    assert viz._numbered(xy, every=10) == [0, 10, 20, 30, 40]


def test_distribution_rings_are_proportional():
    counts = {"object_counting": 30, "object_rel_direction_easy": 6, "object_rel_direction_hard": 4, "room_size_estimation": 20,
              "camera_displacement": 40, "new_task": 0}
    span = lambda w: (w.theta2 - w.theta1) % 360 or 360  # noqa: E731
    ax = viz.distribution_figure(counts).axes[0]
    tasks = by_gid(ax, "task-")
    groups = by_gid(ax, "group-")
    assert set(tasks) == {"task-object_counting", "task-object_rel_direction", "task-room_size_estimation", "task-camera_displacement"}
    assert set(groups) == {"group-Configuration", "group-Measurement", "group-Camera motion"}
    for name, n in [("object_counting", 30), ("camera_displacement", 40), ("room_size_estimation", 20), ("object_rel_direction", 10)]:
        assert span(tasks[f"task-{name}"]) == pytest.approx(360 * n / 100)
    assert span(groups["group-Configuration"]) == pytest.approx(360 * 40 / 100)
    assert all(w.r == 1.0 for w in tasks.values()) and all(w.r < 1.0 for w in groups.values())
    variants = by_gid(viz.distribution_figure(counts, merge_variants=False).axes[0], "task-")
    assert span(variants["task-object_rel_direction_easy"]) == pytest.approx(360 * 6 / 100)
    assert "task-object_rel_direction" not in variants
    empty = viz.distribution_figure({}).axes[0]
    assert any("no questions" in t.get_text() for t in empty.texts)


def test_question_picture_shows_every_instance_of_its_category(built):
    out, _ = built
    rec = next(r for r in read_qa_records(out) if r.question_type == "object_counting")
    scene, frames = viz.load_scene(out, "scannet", SCENE)
    picks = viz.question_frames(rec, frames, scene, max_frames=4)
    wanted = {o.instance_id for o in scene.objects if o.category == rec.categories[0]}
    seen_anywhere = {v.instance_id for f in frames.frames for v in f.visible} & wanted
    seen_in_picks = {v.instance_id for k in picks for v in frames.frames[k].visible} & wanted
    if len(picks) < 4:
        assert seen_in_picks == seen_anywhere

    fig = viz.question_figure(rec, out)
    drawn = {}
    for ax in fig.axes:
        drawn.update(by_gid(ax, "bbox-"))
    expected = {
        f"bbox-{frames.frames[k].frame_id}-{v.instance_id}": v.bbox_2d
        for k in picks for v in frames.frames[k].visible if v.instance_id in wanted
    }
    assert set(drawn) == set(expected)
    for gid, (x0, y0, x1, y1) in expected.items():
        r = drawn[gid]
        assert (r.get_x(), r.get_y(), r.get_width(), r.get_height()) == (x0 - 0.5, y0 - 0.5, x1 - x0 + 1, y1 - y0 + 1)
    assert rec.question in fig._suptitle.get_text().replace("\n", " ")


def test_question_frames_follow_frame_ids(built):
    out, _ = built
    scene, frames = viz.load_scene(out, "scannet", SCENE)
    rec = next(r for r in read_qa_records(out) if r.question_type == "object_counting")
    ids = [frames.frames[5].frame_id, frames.frames[2].frame_id]
    assert viz.question_frames(rec.model_copy(update={"frame_ids": ids}), frames, scene) == [5, 2]


def test_html_report_and_cli(built, tmp_path):
    out, _ = built
    qid = read_qa_records(out)[0].id
    app = Typer()
    app.command()(visualize_command)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(app, ["visualize-command", str(out), "--dest", str(tmp_path), "--question", qid])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "distribution.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "scenes" / f"scannet__{SCENE}.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "questions" / f"{qid}.png").read_bytes()[:8] == PNG_MAGIC
    page = (tmp_path / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4  # answers per task, distribution, the scene, the question
    assert (tmp_path / "answers.png").read_bytes()[:8] == PNG_MAGIC
    assert all(base64.b64decode(b)[:8] == PNG_MAGIC for b in images)
    assert not re.search(r'(src|href)="(https?:|/|file:)', page)  # nothing outside the file
    assert "object_counting" in page
    res = CliRunner().invoke(app, ["visualize-command", str(out), "--dest", str(tmp_path), "--scene", "nope"])
    assert res.exit_code == 2 and "no scene 'nope'" in res.output


def test_question_picture_of_a_meta_build_is_the_top_down_view(shared_file, tmp_path):
    """vsibench-meta builds have scene graphs without frames (and keyed vsibench-meta-scannet while
    their records say scannet): the question is drawn over the scene's top-down boxes."""
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.registry import make_adapter

    adapter = make_adapter("vsibench-meta", shared_file("vsibench_meta_scannet_val.json"))
    out = tmp_path / "meta"
    build(adapter, BuildConfig(out=out, tasks=("room_size_estimation",)), adapter.list_scenes()[:1])
    rec = read_qa_records(out)[0]
    assert rec.dataset == "scannet" and viz.record_scene(out, rec) == ("vsibench-meta-scannet", rec.scene_name)
    fig = viz.question_figure(rec, out)
    scene, _ = viz.load_scene(out, "vsibench-meta-scannet", rec.scene_name)
    assert len(by_gid(fig.axes[0], "box-")) == len(scene.objects)
    assert rec.question in fig._suptitle.get_text().replace("\n", " ")
    app = Typer()
    app.command()(visualize_command)
    res = CliRunner().invoke(app, [str(out), "--question", rec.id, "--no-report", "--dest", str(tmp_path / "fig")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "fig" / "questions" / f"{rec.id}.png").read_bytes().startswith(PNG_MAGIC)


def test_report_plots_answers_scores_and_loss(built, tmp_path):
    """The report's plots hold the data they draw: every answer, every score, every logged loss."""
    import json

    out, _ = built
    records = read_qa_records(out)
    fig = viz.answer_distribution_figure(records)
    for qtype in {r.question_type for r in records}:
        bars = [p for ax in fig.axes for p in ax.patches if p.get_gid() == f"answers-{qtype}"]
        n = sum(1 for r in records if r.question_type == qtype)
        if next(r for r in records if r.question_type == qtype).is_numeric:
            assert sum(b.get_height() for b in bars) == n  # the histogram counts every answer
        else:
            assert sum(b.get_width() for b in bars) <= n and bars
    results = {
        "model": {"overall": 40.0, "tasks": {"a": {"task": "object_counting", "metric": "MRA", "n": 5, "score": 55.0}}},
        "frequency": {"overall": 20.0, "tasks": {"a": {"task": "object_counting", "metric": "MRA", "n": 5, "score": 30.0},
                                                  "b": {"task": "room_size_estimation", "metric": "MRA", "n": 2, "score": 10.0}}},
    }
    ax = viz.scores_figure(results).axes[0]
    heights = {p.get_gid(): p.get_height() for p in ax.patches}
    assert heights == {"score-model-object_counting": 55.0, "score-model-overall": 40.0,
                       "score-frequency-object_counting": 30.0, "score-frequency-room_size_estimation": 10.0,
                       "score-frequency-overall": 20.0}
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_summary.json").write_text(json.dumps({"losses": [[1, 3.5], [2, 2.25], [3, 1.0]]}))
    losses = viz.read_run_losses(run)
    assert losses == [(1, 3.5), (2, 2.25), (3, 1.0)]
    (line,) = [ln for ln in viz.loss_figure({"run": losses}).axes[0].lines if ln.get_gid() == "loss-run"]
    assert list(line.get_xdata()) == [1, 2, 3] and list(line.get_ydata()) == [3.5, 2.25, 1.0]
    with pytest.raises(FileNotFoundError, match="no training summary"):
        viz.read_run_losses(tmp_path)
    # the command puts them in the report
    res_file = tmp_path / "m" / "results.json"
    res_file.parent.mkdir()
    res_file.write_text(json.dumps(results["model"]))
    app = Typer()
    app.command()(visualize_command)
    r = CliRunner().invoke(app, [str(out), "--dest", str(tmp_path / "fig"), "--results", str(res_file), "--run", str(run)])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "fig" / "report.html").read_text()
    assert "Answers per task" in page and "Scores per task" in page and "Training loss" in page
