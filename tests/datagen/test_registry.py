import pytest

from vlm3r.datagen import TASKS
from vlm3r.datagen.base import Task
from vlm3r.datagen.registry import TaskRegistry


class _Dummy(Task):
    name = "object_countinx"
    version = 1

    def generate(self, scene, frames, rng):
        return []


def test_registered_tasks_include_object_counting():
    assert "object_counting" in TASKS.names()
    assert TASKS.get("object_counting").version >= 1


def test_duplicates_rejected_and_typos_suggested():
    reg = TaskRegistry()
    reg.register(_Dummy)
    with pytest.raises(ValueError, match="already registered"):
        reg.register(_Dummy)
    with pytest.raises(KeyError, match="did you mean object_countinx"):
        reg.get("object_counting")
    with pytest.raises(KeyError, match="did you mean object_counting"):
        TASKS.select(["object_countng"])


def test_task_without_version_rejected():
    class NoVersion(Task):
        name = "x"

        def generate(self, scene, frames, rng):
            return []

    with pytest.raises(TypeError, match="version"):
        TaskRegistry().register(NoVersion)
