"""Numeric distractors: range, spacing, display precision, determinism."""

import numpy as np
import pytest

from vlm3r.datagen.numeric_choices import numeric_choice_texts, numeric_choices, numeric_distractors


def check_spacing(answer, values):
    allv = [answer, *values]
    for v in values:
        assert 0.25 * answer - 1e-9 <= v <= 1.75 * answer + 1e-9
    for i in range(len(allv)):
        for j in range(i + 1, len(allv)):
            assert abs(allv[i] - allv[j]) >= 0.2 * answer - 1e-9, (answer, values)


@pytest.mark.parametrize("answer", [0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.3, 4.9, 7.5, 10.0])
def test_metre_answers(answer):
    for seed in range(25):
        d = numeric_distractors(answer, np.random.default_rng(seed))
        assert len(d) == 3 and all(isinstance(x, float) for x in d)
        check_spacing(answer, d)
        texts = numeric_choice_texts([answer, *d])
        assert len(set(texts)) == 4
        # Same number of decimals on every option (no leak by formatting), at least one.
        decimals = {len(t.split(".")[1]) for t in texts}
        assert len(decimals) == 1 and decimals.pop() >= 1
        assert [float(t) for t in texts] == pytest.approx([answer, *d])


def test_coarse_grid_used_when_it_fits():
    # 2.3: the 0.1 grid has room, so every distractor is a multiple of 0.1.
    for seed in range(20):
        d = numeric_distractors(2.3, np.random.default_rng(seed))
        assert all(abs(x * 10 - round(x * 10)) < 1e-9 for x in d)
    # 0.2: the 0.1 grid in [0.05, 0.35] only holds 0.1 and 0.3; a finer grid is used.
    texts = numeric_choices(0.2, np.random.default_rng(0))
    assert texts[0] == "0.20" and all(len(t) == 4 for t in texts)


def test_integer_answers_and_determinism():
    for answer in (3, 45, 180, 1200):
        d = numeric_distractors(answer, np.random.default_rng(1), decimals=0)
        assert all(isinstance(x, int) for x in d)
        check_spacing(answer, d)
        assert numeric_choice_texts([answer, *d], min_decimals=0)[0] == str(answer)
    a = numeric_distractors(3.7, np.random.default_rng(42))
    assert a == numeric_distractors(3.7, np.random.default_rng(42))
    assert len({tuple(numeric_distractors(3.7, np.random.default_rng(s))) for s in range(20)}) > 5


def test_distractors_cover_the_range():
    seen = np.concatenate([numeric_distractors(4.0, np.random.default_rng(s)) for s in range(300)])
    assert seen.min() < 1.3 and seen.max() > 6.7  # both ends of [1.0, 7.0] are reached


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_answer_raises(bad):
    with pytest.raises(ValueError, match="positive finite answer"):
        numeric_distractors(bad, np.random.default_rng(0))


def test_too_many_distractors_raise():
    # A range of 1.5 x answer with 0.2 x answer spacing holds at most 8 values, answer included.
    with pytest.raises(ValueError, match="cannot place"):
        numeric_distractors(1.0, np.random.default_rng(0), k=9)


def test_distractor_memory_does_not_grow_with_the_answer():
    """A huge answer (schema-valid scenes reach 1e6 cm sizes) costs no grid in memory: the old
    materialised grid of 1.5 x answer x 10 points would be 12 GB here."""
    import tracemalloc

    import numpy as np

    from vlm3r.datagen.numeric_choices import numeric_distractors

    tracemalloc.start()
    values = numeric_distractors(1e9, np.random.default_rng(0), 3, decimals=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20
    options = [1e9, *values]
    assert all(0.25e9 <= v <= 1.75e9 for v in values)
    assert all(abs(x - y) >= 0.2e9 - 1e-3 for i, x in enumerate(options) for y in options[i + 1:])
