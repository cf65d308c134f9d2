"""A typed registry of task generators: registered by decorator, duplicates rejected, typos answered
with suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from vlm3r.datagen.base import Task


class TaskRegistry:
    def __init__(self) -> None:
        self._tasks: dict[str, type[Task]] = {}

    def register(self, cls: type[Task]) -> type[Task]:
        """Class decorator. Rejects a second task of the same name and tasks without name/version."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__qualname__} has no task name")
        if not isinstance(getattr(cls, "version", None), int):
            raise TypeError(f"task {name!r} has no integer version")
        if name in self._tasks:
            raise ValueError(f"task {name!r} is already registered by {self._tasks[name].__qualname__}")
        self._tasks[name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def get(self, name: str) -> Task:
        """A fresh instance of the named task; an unknown name raises KeyError with suggestions."""
        if name not in self._tasks:
            close = difflib.get_close_matches(name, self._tasks, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known tasks: {', '.join(self.names())}"
            raise KeyError(f"unknown task {name!r}{hint}")
        return self._tasks[name]()

    def select(self, names: Iterable[str] | None) -> list[Task]:
        """The named tasks (all registered ones for None), in the given order."""
        return [self.get(n) for n in (self.names() if names is None else names)]


TASKS = TaskRegistry()
register_task = TASKS.register
