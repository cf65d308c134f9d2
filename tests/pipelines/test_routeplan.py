"""``vlm3r-data routeplan`` on the scene graphs of a build: exports like every task, pictures,
reproducibility, skipped scenes, and the command's errors."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from vlm3r.schemas.rows import record_from_qa_row
from vlm3r.datagen.route_plan import RoutePlanning, plan_routes
from vlm3r.cli import routeplan_command
from vlm3r.pipelines.routeplan import run_routeplan
from vlm3r.schemas.seeding import scene_rng
from vlm3r.datagen.navigation import build_navigator, scene_mesh
from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.scene import SceneMetadata


@pytest.fixture(scope="module")
def built(scannet_root, tmp_path_factory):
    """A build of the synthetic scans with one cheap task (the scene graphs are what matters)."""
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, _ = scannet_root
    out = tmp_path_factory.mktemp("routeplan") / "out"
    build(ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), tasks=("object_counting",), write_video=False))
    return out


def read_records(path) -> list[QARecord]:  # noqa: ANN001
    return [record_from_qa_row(json.loads(line)) for line in path.read_text().splitlines()]


def test_routeplan_writes_the_task_exports(built, tmp_path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(built, out)
    summary = run_routeplan(out / "scenes", per_scene=4, png=True)
    task_dir = out / "qa" / "route_planning"
    records = read_records(task_dir / "scannet-00000.jsonl")
    assert summary.records == {"scannet": len(records)} and summary.scenes == 3 and not summary.skipped
    assert (task_dir / "scannet.parquet").is_file() and (task_dir / "scannet.done.json").is_file()
    assert (out / "train" / "route_planning").is_dir()
    merged = json.loads((out / "qa" / "summary.scannet.json").read_text())
    assert "object_counting" in merged and merged["route_planning"]["count"] == len(records)
    stats = json.loads((task_dir / "scannet.routeplan.json").read_text())
    assert stats["backend"] == "grid" and stats["seconds_navmesh"] > 0 and "questions" not in stats["rejected"]
    pngs = sorted((out / "routes" / "scannet").glob("*.png"))
    assert summary.pngs == len(records) == len(pngs)
    assert [p.stem for p in pngs] == sorted(r.id for r in records)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # the records are those of the planner run with the build's per-scene rng
    for sid in ("scene0001_00", "scene0002_00", "scene0003_00"):
        scene = SceneMetadata.model_validate_json((out / "scenes" / "scannet" / sid / "scene_metadata.json").read_bytes())
        nav = build_navigator(*scene_mesh(scene))
        drafts, _ = plan_routes(scene, nav, scene_rng(0, RoutePlanning.name, scene.dataset, sid), 4)
        assert [d.question for d in drafts] == [r.question for r in records if r.scene_name == sid]
        assert [d.answer for d in drafts] == [r.ground_truth for r in records if r.scene_name == sid]


def test_scene_with_a_missing_mesh_is_skipped(built, tmp_path) -> None:
    scenes = tmp_path / "scenes"
    shutil.copytree(built / "scenes", scenes)
    meta = scenes / "scannet" / "scene0002_00" / "scene_metadata.json"
    scene = SceneMetadata.model_validate_json(meta.read_bytes())
    scene.mesh_file = "scans/gone.ply"
    meta.write_text(scene.model_dump_json())
    summary = run_routeplan(scenes, out=tmp_path / "o")
    assert summary.scenes == 2
    assert "gone.ply: missing mesh" in summary.skipped["scannet/scene0002_00"]
    assert all(r.scene_name != "scene0002_00" for r in read_records(tmp_path / "o" / "qa" / "route_planning" / "scannet-00000.jsonl"))


def flat(text: str) -> str:
    """Command output without rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_command_errors(tmp_path) -> None:
    app = typer.Typer()
    app.command("routeplan")(routeplan_command)
    app.command("other")(lambda: None)
    runner = CliRunner()
    res = runner.invoke(app, ["routeplan", "--scenes-dir", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "nowhere" in flat(res.output)
    res = runner.invoke(app, ["routeplan", "--scenes-dir", str(tmp_path), "--nav-backend", "recast"])
    assert res.exit_code == 2 and "unknown backend 'recast'" in flat(res.output)
    from vlm3r.datagen.navigation.habitat import HabitatNavigator

    if not HabitatNavigator.available():
        res = runner.invoke(app, ["routeplan", "--scenes-dir", str(tmp_path), "--nav-backend", "habitat"])
        assert res.exit_code == 2 and "conda install habitat-sim" in flat(res.output)
    res = runner.invoke(app, ["routeplan", "--scenes-dir", str(tmp_path), "--agent-radius", "0.5"])
    assert res.exit_code == 2


def test_route_figure_draws_the_route(built) -> None:
    """The picture's axes hold the free-space raster, the path and one labelled star per anchor."""
    from vlm3r.pipelines.routeplan import route_figure

    scene = SceneMetadata.model_validate_json((built / "scenes" / "scannet" / "scene0001_00" / "scene_metadata.json").read_bytes())
    nav = build_navigator(*scene_mesh(scene))
    a, b = nav.sample_points(2, np.random.default_rng(0))
    path = nav.shortest_path(a, b)
    extra = {
        "template": 1, "geodesic_m": 1.0, "turn_angles_deg": [90.0], "path": path.tolist(), "waypoints": path.tolist(),
        "anchors": [
            {"role": r, "category": o.category, "instance_id": o.instance_id, "point": p.tolist()}
            for r, o, p in zip(("SRC", "TGT"), scene.objects, (path[0], path[-1]))
        ],
    }
    rec = QARecord(id="x", dataset="d", scene_name=scene.scene_id, question_type="route_planning", question="q?",
                   options=["A. Turn Left", "B. Turn Right", "C. Turn Back"], ground_truth="Turn Left", mc_answer="A",
                   task_version=1, extra=extra)
    fig = route_figure(nav.topdown(), scene, rec)
    ax = fig.axes[0]
    assert len(ax.images) == 1 and ax.images[0].get_array().shape[:2] == nav.grid.free.shape
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == sorted(f"{r}: {o.category}" for r, o in zip(("SRC", "TGT"), scene.objects))
