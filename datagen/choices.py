"""Multiple-choice construction: numeric distractors and letter balancing over a whole task output.

Letter balancing is a pure function of the (sorted) drafts and the seed, so it does not depend on
worker count or on the order in which scenes finished.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vlm3r.schemas.qa import MC_LETTERS


def count_distractors(answer: int, rng: np.random.Generator, k: int = 3) -> list[int]:
    """``k`` distinct wrong counts ``answer + d`` with d in [-3, 3] \\ {0}, clipped to >= 1."""
    pool = sorted({max(1, answer + d) for d in (-3, -2, -1, 1, 2, 3)} - {answer})
    return [int(x) for x in rng.choice(pool, size=k, replace=False)]


def balanced_positions(n_choices: Sequence[int], rng: np.random.Generator) -> list[int]:
    """A correct-answer position for every question (question i has ``n_choices[i]`` options).

    Questions are balanced separately within each group of the same option count (otherwise the
    last letter of short questions would be over-used to even out the long ones, and "always D"
    would win on 4-option questions). Within a group, questions are visited in a seeded random
    order and each takes the position used least so far (ties broken by the rng): counts end
    within 1 of each other.
    """
    n = np.minimum(np.asarray(n_choices, dtype=np.int64), len(MC_LETTERS))
    out = [0] * len(n)
    for k in sorted(set(n.tolist())):
        group = np.flatnonzero(n == k)
        counts = np.zeros(k, dtype=np.int64)
        for i in group[rng.permutation(len(group))]:
            least = np.flatnonzero(counts == counts.min())
            pos = int(least[rng.integers(len(least))])
            counts[pos] += 1
            out[i] = pos
    return out


def lettered_options(choices: Sequence[str], correct_pos: int) -> tuple[list[str], str]:
    """Options "A. ..." with ``choices[0]`` (the correct one) moved to ``correct_pos``."""
    order = list(choices[1:])
    order.insert(correct_pos, choices[0])
    return [f"{MC_LETTERS[i]}. {c}" for i, c in enumerate(order)], MC_LETTERS[correct_pos]
