"""Where every random choice comes from: rngs seeded from (seed, purpose, scene), and the
process-independent hash that keys them. Output must not depend on scheduling or worker count."""

from __future__ import annotations

import zlib

import numpy as np


def stable_hash(text: str) -> int:
    """A process-independent 32-bit hash (Python's ``hash`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def scene_rng(seed: int, purpose: str, dataset: str, scene_id: str) -> np.random.Generator:
    """The rng for one (seed, purpose, scene): the same whatever process or order runs it."""
    return np.random.default_rng([seed, stable_hash(purpose), stable_hash(f"{dataset}/{scene_id}")])
