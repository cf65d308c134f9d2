"""Multiple-choice options for numeric answers (DESIGN.md section 5).

Numeric questions also carry four options so the benchmark can be posed either way: the answer and
three distractors drawn in ``[0.25, 1.75] x answer``, all pairwise (answer included) at least
``0.2 x answer`` apart. Distractors lie on the answer's display grid (``10^-decimals``), so that the
options cannot be told apart by their number of digits; when that grid is too coarse for the
spacing (tiny answers), a finer grid is used and ``numeric_choice_texts`` prints every option of
the question at the same finer precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LOW, HIGH = 0.25, 1.75
"""Distractors lie in [LOW, HIGH] x answer."""
MIN_GAP = 0.2
"""Every two options are at least MIN_GAP x answer apart."""
_MAX_EXTRA_DECIMALS = 6
_TOL = 1e-9


def numeric_distractors(
    answer: float, rng: np.random.Generator, k: int = 3, decimals: int = 1
) -> list[float] | list[int]:
    """``k`` wrong values for a positive numeric ``answer``.

    Each lies in ``[0.25, 1.75] * answer`` on a grid of ``10^-d`` with ``d >= decimals`` the coarsest
    precision that fits; every two of the ``k + 1`` values (answer included) differ by at least
    ``0.2 * answer``. Draws are sequential and uniform over the grid points still allowed, all from
    ``rng``. Returns ints when ``d == 0`` (e.g. centimetres), floats rounded to ``d`` decimals
    otherwise. Raises ValueError for a non-positive or non-finite answer, or when ``k`` values
    cannot fit (k > 4 can be impossible; k <= 3 always fits).
    """
    a = float(answer)
    if not np.isfinite(a) or a <= 0:
        raise ValueError(f"numeric_distractors needs a positive finite answer, got {answer!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    gap = MIN_GAP * a
    for d in range(max(decimals, 0), max(decimals, 0) + _MAX_EXTRA_DECIMALS + 1):
        scale = 10.0**d
        lo, hi = int(np.ceil(LOW * a * scale - _TOL)), int(np.floor(HIGH * a * scale + _TOL))
        grid = np.arange(lo, hi + 1, dtype=np.float64) / scale
        allowed = np.abs(grid - a) >= gap - _TOL
        picks: list[float] = []
        while len(picks) < k and allowed.any():
            x = float(grid[np.flatnonzero(allowed)[rng.integers(allowed.sum())]])
            picks.append(x)
            allowed &= np.abs(grid - x) >= gap - _TOL
        if len(picks) == k:
            return [int(round(x)) for x in picks] if d == 0 else [round(x, d) for x in picks]
    raise ValueError(f"cannot place {k} distractors {MIN_GAP:.0%} apart in [{LOW}, {HIGH}] x {a}")


def numeric_choice_texts(values: Sequence[float], min_decimals: int = 1) -> tuple[str, ...]:
    """Option texts for numeric values, all printed with the same number of decimals: the fewest
    (at least ``min_decimals``) that represent every value exactly, at most ``min_decimals + 6``."""
    vals = [float(v) for v in values]
    d = max(min_decimals, 0)
    while d < max(min_decimals, 0) + _MAX_EXTRA_DECIMALS and any(abs(round(v, d) - v) > _TOL for v in vals):
        d += 1
    return tuple(f"{v:.{d}f}" for v in vals)


def numeric_choices(answer: float, rng: np.random.Generator, decimals: int = 1) -> tuple[str, ...]:
    """The four option texts of a numeric question, the correct one FIRST (``Draft.choices``)."""
    return numeric_choice_texts([answer, *numeric_distractors(answer, rng, 3, decimals)], decimals)
