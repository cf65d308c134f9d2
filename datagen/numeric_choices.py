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
    cannot fit (k > 4 can be impossible; k <= 3 always fits). Memory is O(k) whatever the answer:
    the allowed grid points are kept as integer ranges, never materialised.
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
        allowed = [(lo, hi)] if lo <= hi else []  # grid points i / scale for i in these integer ranges (inclusive)
        allowed = _without(allowed, _too_close(a, gap, scale))
        picks: list[float] = []
        while len(picks) < k and allowed:
            x = _nth(allowed, int(rng.integers(sum(b - a_ + 1 for a_, b in allowed)))) / scale
            picks.append(x)
            allowed = _without(allowed, _too_close(x, gap, scale))
        if len(picks) == k:
            return [int(round(x)) for x in picks] if d == 0 else [round(x, d) for x in picks]
    raise ValueError(f"cannot place {k} distractors {MIN_GAP:.0%} apart in [{LOW}, {HIGH}] x {a}")


def _too_close(centre: float, gap: float, scale: float) -> tuple[int, int]:
    """The integer range of grid points ``i / scale`` closer than ``gap`` to ``centre``, decided by
    the same float64 comparison a materialised grid would make (``|i / scale - centre| < gap - tol``)."""
    near = lambda i: abs(i / scale - centre) < gap - _TOL  # noqa: E731
    first = int(np.floor((centre - gap) * scale)) - 2
    while not near(first) and first <= centre * scale:
        first += 1
    last = int(np.ceil((centre + gap) * scale)) + 2
    while not near(last) and last >= centre * scale:
        last -= 1
    return (first, last) if near(first) and near(last) else (1, 0)


def _without(ranges: list[tuple[int, int]], cut: tuple[int, int]) -> list[tuple[int, int]]:
    """Sorted inclusive integer ranges minus the inclusive range ``cut`` (empty when cut[0] > cut[1])."""
    c0, c1 = cut
    if c0 > c1:
        return ranges
    out = []
    for a, b in ranges:
        if b < c0 or a > c1:
            out.append((a, b))
            continue
        if a < c0:
            out.append((a, c0 - 1))
        if b > c1:
            out.append((c1 + 1, b))
    return out


def _nth(ranges: list[tuple[int, int]], n: int) -> int:
    """The ``n``-th (0-based) integer of sorted inclusive ranges."""
    for a, b in ranges:
        if n <= b - a:
            return a + n
        n -= b - a + 1
    raise IndexError(n)


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
