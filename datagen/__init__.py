"""Task generators (one file per task), their registry, geometry and choices; navigation/ backends.
May import schemas only. Importing this package registers every task in ``TASKS``."""

from vlm3r.datagen import object_counting  # noqa: F401  (registers the task)
from vlm3r.datagen import object_size_estimation  # noqa: F401
from vlm3r.datagen import room_size_estimation  # noqa: F401
from vlm3r.datagen import object_abs_distance  # noqa: F401
from vlm3r.datagen import object_rel_distance  # noqa: F401
from vlm3r.datagen import object_rel_direction  # noqa: F401
from vlm3r.datagen import obj_appearance_order  # noqa: F401
from vlm3r.datagen import camera_displacement  # noqa: F401  (registers the task)
from vlm3r.datagen import camera_movement_direction  # noqa: F401  (registers the task)
from vlm3r.datagen import camera_obj_abs_dist  # noqa: F401  (registers the task)
from vlm3r.datagen import camera_obj_rel_dist  # noqa: F401  (registers the tasks)
from vlm3r.datagen import obj_obj_relative_pos  # noqa: F401  (registers the tasks)
from vlm3r.datagen import route_plan  # noqa: F401  (registers the task)
from vlm3r.datagen.registry import TASKS, register_task

__all__ = ["TASKS", "register_task"]
