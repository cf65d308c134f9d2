"""cli.py: the one command-line module. Its literal defaults equal the library's, and
``python -m vlm3r.cli APP`` reaches each app (what torchrun / accelerate launch start)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from vlm3r import cli


def _default(fn, name: str):  # noqa: ANN001, ANN202
    return inspect.signature(fn).parameters[name].default


def test_routeplan_defaults_are_the_library_defaults() -> None:
    from vlm3r.datagen.navigation import NavConfig
    from vlm3r.datagen.route_plan import RoutePlanning

    assert _default(cli.routeplan_command, "per_scene") == RoutePlanning.max_per_scene
    assert _default(cli.routeplan_command, "agent_radius") == NavConfig().agent_radius


def test_build_defaults_are_the_library_defaults() -> None:
    from vlm3r.datagen.answerability import DEFAULT_MIN_AREA
    from vlm3r.pipelines.build import BuildConfig

    assert _default(cli.build, "answerable_min_area") == DEFAULT_MIN_AREA == BuildConfig(out=None).answerable_min_area
    assert _default(cli.build, "answerable") is BuildConfig(out=None).answerable is True


@pytest.mark.parametrize(("app", "word"), [("train", "--max-steps"), ("eval", "baseline"), ("model", "check-cut3r"), ("data", "routeplan")])
def test_module_entry_dispatches_to_each_app(app: str, word: str) -> None:
    res = subprocess.run([sys.executable, "-m", "vlm3r.cli", app, "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert word in res.stdout
