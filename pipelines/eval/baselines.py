"""Baselines that never look at a scene: random, frequency and blind (DESIGN.md section 8).

Each baseline turns benchmark items into predictions ``{id: text}`` that go through the same scorer
as a model's, so its table has the same format.

* random: a uniformly drawn option per question (its letter for multiple-choice tasks, its number
  for numeric tasks, which are scored by MRA); numeric questions without options get no prediction.
* frequency: multiple-choice tasks answer the most frequent correct option TEXT of the fitting set
  (its letter where a question offers it, else the most frequent correct letter); numeric tasks
  answer the single constant that maximises the task's mean MRA on the fitting set (found exactly by
  a sweep over the MRA acceptance intervals), reported with its value.
* blind: a small scikit-learn model per task that reads only the question text (and, for
  multiple-choice tasks, the option texts shown with it): logistic regression over option features
  (option words crossed with question words, letter position, where a numeric option lies among the
  others, how much an option agrees with the others) picks an option; ridge regression on TF-IDF of
  the question predicts log(answer) for numeric tasks. It is fitted on the train split and scored on
  the test split: a high blind score means the questions or options leak the answer.

Train and test come from ``split_by_scene`` (whole scenes, assigned by a seeded permutation, so no
scene contributes to both) or from the records' own scene-level ``split`` field (``split_by_record``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vlm3r.pipelines.eval.scoring import (
    MRA_THRESHOLDS,
    BenchItem,
    mean_relative_accuracy,
    option_text,
)
from vlm3r.schemas.seeding import stable_hash
from vlm3r.schemas.qa import MC_LETTERS

BaselineKind = Literal["random", "frequency", "blind"]
BASELINES: tuple[str, ...] = ("random", "frequency", "blind")


# --------------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------------


def split_by_scene(items: Sequence[BenchItem], test_fraction: float = 0.5, seed: int = 0) -> tuple[list[BenchItem], list[BenchItem]]:
    """Split items into (train, test) by whole scenes (dataset/scene_name).

    Scenes are sorted, permuted with ``np.random.default_rng([seed, stable_hash("scene-split")])``,
    and the first ``round(test_fraction * n_scenes)`` (at least 1 and at most n - 1 when there are
    two or more scenes) go to test.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    scenes = sorted({(it.dataset, it.scene_name) for it in items})
    rng = np.random.default_rng([seed, stable_hash("scene-split")])
    order = [scenes[i] for i in rng.permutation(len(scenes))]
    n_test = min(max(1, round(test_fraction * len(scenes))), max(1, len(scenes) - 1))
    test_scenes = set(order[:n_test])
    train = [it for it in items if (it.dataset, it.scene_name) not in test_scenes]
    test = [it for it in items if (it.dataset, it.scene_name) in test_scenes]
    return train, test


def split_by_record(items: Sequence[BenchItem], train_split: str = "train") -> tuple[list[BenchItem], list[BenchItem]]:
    """Split items by their own ``split`` field (the build's scene-level split): (train, the rest).
    Raises ValueError when either side would be empty."""
    train = [it for it in items if it.split == train_split]
    test = [it for it in items if it.split and it.split != train_split]
    if not train or not test:
        found = sorted({it.split or "(none)" for it in items})
        raise ValueError(f"the records' split field gives no {train_split!r}/other split pair (splits found: {', '.join(found)})")
    return train, test


def _by_task(items: Iterable[BenchItem]) -> dict[str, list[BenchItem]]:
    out: dict[str, list[BenchItem]] = {}
    for it in items:
        out.setdefault(it.question_type, []).append(it)
    return out


def _option_number(option: str) -> float | None:
    try:
        return float(option_text(option).split()[0])
    except (ValueError, IndexError):
        return None


def _fmt(value: float) -> str:
    """A number at full precision: the shortest text that parses back to the same float ("6", not "6.0")."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# --------------------------------------------------------------------------------------------------
# Random
# --------------------------------------------------------------------------------------------------


def random_predictions(items: Sequence[BenchItem], seed: int = 0) -> dict[str, str]:
    """A uniformly drawn option per question; the rng of each question is seeded from (seed, id),
    so a question's draw does not depend on which other questions are scored."""
    preds: dict[str, str] = {}
    for it in items:
        if not it.options:
            continue
        rng = np.random.default_rng([seed, stable_hash("random-baseline"), stable_hash(it.id)])
        k = int(rng.integers(len(it.options)))
        if it.numeric:
            value = _option_number(it.options[k])
            if value is not None:
                preds[it.id] = _fmt(value)
        else:
            preds[it.id] = MC_LETTERS[k]
    return preds


# --------------------------------------------------------------------------------------------------
# Frequency
# --------------------------------------------------------------------------------------------------


def best_constant(answers: Sequence[float], top: int = 64) -> tuple[float, float]:
    """The constant c maximising the mean MRA of predicting c for every answer; returns (c, MRA).

    For answer g > 0 and threshold theta, c is accepted when |c - g| <= (1 - theta) g, i.e. c lies
    in the closed interval [g - (1-theta) g, g + (1-theta) g]; the mean MRA at c is the number of
    intervals holding c over 10 n. A sweep over the sorted interval ends gives the coverage of every
    segment between consecutive ends; the ends and midpoints of the ``top`` best-covered segments
    are then scored with the scorer itself (whose float64 rounding can move an acceptance boundary
    by an ulp), and the best is returned (ties: the earlier candidate). Answers equal to 0 only
    accept c = 0, a candidate too. Cost O(n log n + top n) for n answers.
    """
    g = np.asarray(answers, dtype=np.float64)
    if g.size == 0:
        raise ValueError("best_constant needs at least one answer")
    half = np.abs(g)[:, None] * (1.0 - np.asarray(MRA_THRESHOLDS))[None, :]
    lo, hi = (g[:, None] - half).ravel(), (g[:, None] + half).ravel()
    keep = half.ravel() > 0
    lo, hi = lo[keep], hi[keep]
    candidates = [np.zeros(1)] if (g == 0).any() else []
    if lo.size:
        xs = np.concatenate([lo, hi])
        delta = np.concatenate([np.ones(lo.size), -np.ones(hi.size)])
        order = np.lexsort((-delta, xs))  # at equal x, starts (+1) before ends (-1): closed intervals
        xs, cover = xs[order], np.cumsum(delta[order])
        best = np.argsort(-cover[:-1], kind="stable")[:top] if xs.size > 1 else np.zeros(1, dtype=np.int64)
        left, right = xs[best], xs[np.minimum(best + 1, xs.size - 1)]
        candidates.append(np.stack([0.5 * (left + right), left, right], axis=1).ravel())
    cands = np.concatenate(candidates)
    mra = mean_relative_accuracy(cands[:, None], g[None, :]).mean(axis=1)
    k = int(np.argmax(mra))
    return float(cands[k]), float(mra[k])


@dataclass
class FrequencyModel:
    """Per task: the constant (numeric tasks), or the most frequent answer text and letter."""

    constants: dict[str, float] = field(default_factory=dict)
    answer_text: dict[str, str] = field(default_factory=dict)
    letter: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, str]:
        """One line per task saying what the baseline answers."""
        out = {t: f"constant {_fmt(c)}" for t, c in self.constants.items()}
        for t, text in self.answer_text.items():
            out[t] = f"answer {text!r} (else letter {self.letter[t]})"
        return out

    def predict(self, items: Sequence[BenchItem]) -> dict[str, str]:
        preds: dict[str, str] = {}
        for it in items:
            if it.numeric:
                if it.question_type in self.constants:
                    preds[it.id] = _fmt(self.constants[it.question_type])
            elif it.question_type in self.letter:
                texts = [option_text(o) for o in it.options]
                want = self.answer_text[it.question_type]
                preds[it.id] = MC_LETTERS[texts.index(want)] if want in texts else self.letter[it.question_type]
        return preds


def _correct_text(it: BenchItem) -> str | None:
    k = MC_LETTERS.find(str(it.answer))
    return option_text(it.options[k]) if 0 <= k < len(it.options) else None


def fit_frequency(train: Sequence[BenchItem]) -> FrequencyModel:
    """Fit the frequency baseline (ties broken by sorted order, so the result is deterministic)."""
    model = FrequencyModel()
    for task, items in sorted(_by_task(train).items()):
        if items[0].numeric:
            model.constants[task] = best_constant([float(it.answer) for it in items])[0]
            continue
        texts = Counter(t for t in (_correct_text(it) for it in items) if t is not None)
        letters = Counter(str(it.answer) for it in items)
        model.letter[task] = min(letters, key=lambda k: (-letters[k], k))
        model.answer_text[task] = min(texts, key=lambda k: (-texts[k], k)) if texts else ""
    return model


# --------------------------------------------------------------------------------------------------
# Blind (scikit-learn)
# --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def option_features(item: BenchItem) -> list[dict[str, float]]:
    """One sparse feature dict per option of a multiple-choice question (see the module docstring).

    Features: ``o=<word>`` (option words), ``qo=<qword>|<oword>`` (question word x option word),
    ``pos=<k>`` (letter position), for all-numeric options ``num_rank`` (rank / (n - 1)),
    ``num_logratio`` (log(value / median)), its absolute value and ``num_min`` / ``num_max``, and
    ``agree``: the mean, over the other options, of the fraction of comma-separated positions
    holding the same text (answers built by perturbing the correct one agree most with the others).
    """
    texts = [option_text(o) for o in item.options]
    qwords = sorted(set(_tokens(item.question)))
    nums = [_option_number(o) for o in item.options]
    n = len(texts)
    numeric = n > 1 and all(v is not None for v in nums)
    if numeric:
        v = np.maximum(np.array(nums, dtype=np.float64), 1e-6)
        logratio = np.log(v / float(np.median(v)))
        rank = np.argsort(np.argsort(v)) / (n - 1)
        vmin, vmax = v.min(), v.max()
    parts = [[p.strip().lower() for p in t.split(",")] for t in texts]
    feats: list[dict[str, float]] = []
    for k, text in enumerate(texts):
        f: dict[str, float] = {f"pos={k}": 1.0}
        for w in sorted(set(_tokens(text))):
            f[f"o={w}"] = 1.0
            for q in qwords:
                f[f"qo={q}|{w}"] = 1.0
        if numeric:
            f["num_rank"] = float(rank[k])
            f["num_logratio"] = float(logratio[k])
            f["num_abslogratio"] = float(abs(logratio[k]))
            f["num_min"] = float(v[k] == vmin)
            f["num_max"] = float(v[k] == vmax)
        if n > 1:
            same = [
                sum(a == b for a, b in zip(parts[k], parts[j])) / len(parts[k]) if len(parts[k]) == len(parts[j]) else 0.0
                for j in range(n)
                if j != k
            ]
            f["agree"] = sum(same) / len(same)
        feats.append(f)
    return feats


@dataclass
class BlindModel:
    """Fitted per-task text models. Tasks it has no model for get no prediction here
    (``run_baseline`` then answers them at random)."""

    mc: dict[str, tuple[object, object]] = field(default_factory=dict)  # task -> (DictVectorizer, LogisticRegression)
    numeric: dict[str, object] = field(default_factory=dict)  # task -> sklearn Pipeline predicting log(answer)

    def predict(self, items: Sequence[BenchItem]) -> dict[str, str]:
        preds: dict[str, str] = {}
        for task, group in sorted(_by_task(items).items()):
            if task in self.numeric:
                values = np.exp(self.numeric[task].predict([it.question for it in group]))  # type: ignore[attr-defined]
                preds.update({it.id: _fmt(v) for it, v in zip(group, values)})
            elif task in self.mc:
                vec, clf = self.mc[task]
                with_options = [it for it in group if it.options]
                rows = [f for it in with_options for f in option_features(it)]
                if not rows:
                    continue
                p = clf.predict_proba(vec.transform(rows))[:, list(clf.classes_).index(1)]  # type: ignore[attr-defined]
                start = 0
                for it in with_options:
                    n = len(it.options)
                    preds[it.id] = MC_LETTERS[int(np.argmax(p[start : start + n]))]
                    start += n
        return preds


def _sklearn():
    try:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
    except ImportError:
        raise ImportError("the blind baseline needs scikit-learn: pip install 'vlm3r[eval]'") from None
    return DictVectorizer, TfidfVectorizer, LogisticRegression, Ridge, make_pipeline


def fit_blind(train: Sequence[BenchItem]) -> BlindModel:
    """Fit the blind baseline on ``train`` (deterministic: lbfgs and closed-form solvers, no random state)."""
    DictVectorizer, TfidfVectorizer, LogisticRegression, Ridge, make_pipeline = _sklearn()
    model = BlindModel()
    for task, items in sorted(_by_task(train).items()):
        if items[0].numeric:
            y = np.log(np.maximum(np.array([float(it.answer) for it in items]), 1e-3))
            reg = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b"), Ridge(alpha=1.0))
            reg.fit([it.question for it in items], y)
            model.numeric[task] = reg
            continue
        rows, labels = [], []
        for it in items:
            k = MC_LETTERS.find(str(it.answer))
            for j, f in enumerate(option_features(it)):
                rows.append(f)
                labels.append(int(j == k))
        if len(set(labels)) < 2:
            continue
        vec = DictVectorizer()
        clf = LogisticRegression(C=1.0, solver="lbfgs", max_iter=2000)
        clf.fit(vec.fit_transform(rows), labels)
        model.mc[task] = (vec, clf)
    return model


# --------------------------------------------------------------------------------------------------
# One entry point
# --------------------------------------------------------------------------------------------------


@dataclass
class BaselineRun:
    """Predictions of one baseline on the test items, with a note per task (frequency constants)."""

    kind: str
    predictions: dict[str, str]
    notes: dict[str, str]
    n_train: int
    n_test: int


def run_baseline(kind: BaselineKind, train: Sequence[BenchItem], test: Sequence[BenchItem], seed: int = 0) -> BaselineRun:
    """Fit ``kind`` on ``train`` (random ignores it) and predict ``test``."""
    notes: dict[str, str] = {}
    if kind == "random":
        preds = random_predictions(test, seed)
    elif kind == "frequency":
        model = fit_frequency(train)
        preds = model.predict(test)
        test_tasks = {it.question_type for it in test}
        notes = {t: d for t, d in model.describe().items() if t in test_tasks}
    elif kind == "blind":
        preds = fit_blind(train).predict(test)
    else:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
    counts = Counter(it.question_type for it in train)
    unanswered = [it for it in test if it.id not in preds]
    preds.update(random_predictions(unanswered, seed))
    for task in sorted({it.question_type for it in unanswered if it.id in preds}):
        notes[task] = "no training questions: random fallback"
    for task in {it.question_type for it in test}:
        notes[task] = f"{notes.get(task, '')} [train n={counts.get(task, 0)}]".strip()
    return BaselineRun(kind, preds, notes, len(train), len(test))


