"""Task generators. Importing this package registers every task in ``TASKS``."""

from vlm3r.datagen import object_counting  # noqa: F401  (registers the task)
from vlm3r.datagen.registry import TASKS, register_task

__all__ = ["TASKS", "register_task"]
