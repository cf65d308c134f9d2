from collections import Counter

import numpy as np
import pytest

from vlm3r.datagen.choices import balanced_positions, count_distractors, lettered_options


@pytest.mark.parametrize("answer", [1, 2, 3, 7, 40])
def test_count_distractors(answer):
    for seed in range(20):
        wrong = count_distractors(answer, np.random.default_rng(seed))
        assert len(set(wrong)) == 3 and answer not in wrong
        assert all(w >= 1 and abs(w - answer) <= 3 for w in wrong)


def test_balanced_positions_within_one_and_deterministic():
    n = [4] * 103
    pos = balanced_positions(n, np.random.default_rng(5))
    counts = Counter(pos)
    assert max(counts.values()) - min(counts.values()) <= 1 and set(counts) == {0, 1, 2, 3}
    assert pos == balanced_positions(n, np.random.default_rng(5))
    assert pos != balanced_positions(n, np.random.default_rng(6))


def test_balanced_positions_balance_each_option_count_separately():
    n = [2] * 31 + [3] * 20 + [4] * 41
    pos = balanced_positions(n, np.random.default_rng(0))
    assert all(p < k for p, k in zip(pos, n))
    for k in (2, 3, 4):
        counts = Counter(p for p, m in zip(pos, n) if m == k)
        assert set(counts) == set(range(k)) and max(counts.values()) - min(counts.values()) <= 1


def test_lettered_options_moves_correct_answer():
    opts, letter = lettered_options(["3", "5", "2", "4"], 2)
    assert opts == ["A. 5", "B. 2", "C. 3", "D. 4"] and letter == "C"
