"""VSI-Bench compatible scoring (DESIGN.md section 8): parsing, per-item metrics, aggregation, I/O.

Per item
    * numeric tasks (``NUMERIC_TASK_UNITS``): Mean Relative Accuracy, the mean over the ten thresholds
      ``MRA_THRESHOLDS`` of ``|pred - gt| / gt <= 1 - theta``;
    * every other task: multiple choice, 1 if the parsed prediction equals the correct letter
      (case-insensitive), else 0.

Parsing (default ``"vsibench"``, the official scorer's ``fuzzy_matching``): the prediction is split on
single spaces, the first piece is kept, trailing '.' are stripped, then surrounding whitespace.
Numeric tasks take ``float()`` of that token; anything ``float()`` rejects ("3.5m", "three") scores 0.
The optional ``"robust"`` parser also reads "Answer: B", "(B)", "B)", option texts, units
("3.5m", "120 cm", "20 square meters") and number words ("three"); it is off by default.

Ground truth 0 (a rule the official scorer lacks: it divides by zero): the relative error is taken as
its limit, 0 when the prediction is exactly 0 and infinite otherwise, so MRA is 1.0 for an exact 0
and 0.0 for anything else. Negative ground truths divide by ``|gt|``.

Aggregation (``summarize``): the mean score per question_type (a benchmark item without a prediction
scores 0, as the official scorer's worst case), the three ``object_rel_direction_*`` variants
averaged into one ``object_rel_direction`` score (``merge="family"`` also averages the other
variant families of ``TASK_FAMILIES``), and overall = the unweighted mean of the task scores x 100.
Prediction ids not in the benchmark and repeated ids are counted and reported (the first
prediction of a repeated id is the one scored).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from vlm3r.schemas.io import check_build_table, qa_files, read_jsonl

from vlm3r.schemas.qa import MC_LETTERS, NUMERIC_TASK_UNITS, TASK_FAMILIES, QARecord, is_numeric_task, task_family

MERGE_MODES: Mapping[str, tuple[str, ...]] = {
    "vsibench": ("object_rel_direction",),
    "family": tuple(TASK_FAMILIES),
    "none": (),
}
"""Which families are reported as one task (their variants' means averaged, unweighted):
``vsibench`` (default) merges only the relative-direction variants, as the official VSI-Bench
scorer does; the official VSTI-Bench scorer merges none of its variants, and its question types
are untouched by ``vsibench``, so both official numbers come out of the default. ``family``
merges every family into the paper's task (VSTI-Bench's five tasks); ``none`` merges nothing."""

MergeMode = Literal["vsibench", "family", "none"]

MRA_THRESHOLDS: tuple[float, ...] = (
    0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.8999999999999999, 0.95,
)  # fmt: skip
"""The ten MRA confidence thresholds, 0.50 to 0.95 in steps of 0.05, hard-coded as the exact float64
values the official scorer uses (``np.linspace(.5, .95, 10)``, whose ninth value is one ulp under
0.9). With them ``|9 - 10| / 10 = 0.1 <= 1 - theta`` holds for nine thresholds, as in exact
arithmetic; the literal 0.9 would make ``1 - 0.9 = 0.09999999999999998`` reject it.

The comparison is the official float64 one, kept bit for bit so that scores equal the official
scorer's, including its rounding at exact boundaries: ``1 - 0.8 = 0.19999999999999996``, so a
relative error of exactly 0.2 (8 for 10) passes six thresholds (MRA 0.6), not seven."""

Parser = Literal["vsibench", "lmms-eval", "robust"]
PARSERS: tuple[str, ...] = ("vsibench", "lmms-eval", "robust")
"""Scoring protocols (how a prediction is read): ``vsibench`` the thinking-in-space / VLM-3R task
code (first token, ``float()``); ``lmms-eval`` lmms-eval 0.7.3's ``vsibench`` task (the same for
multiple choice; numeric answers take the first number in the text, digits or English words);
``robust`` ours (letters and numbers from free text, units converted)."""


def reported_task(question_type: str, merge: MergeMode = "vsibench") -> str:
    """The task name a question type is reported under in ``merge`` mode."""
    family = task_family(question_type)
    return family if family in MERGE_MODES[merge] else question_type


# --------------------------------------------------------------------------------------------------
# Benchmark items
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchItem:
    """What scoring needs from one benchmark question.

    ``answer`` is the number for numeric tasks and the correct letter for multiple-choice tasks.
    ``options`` are the lettered option strings ("A. chair"), or empty.
    """

    id: str
    question_type: str
    answer: float | str
    question: str = ""
    options: tuple[str, ...] = ()
    dataset: str = ""
    scene_name: str = ""
    split: str = ""

    @property
    def numeric(self) -> bool:
        return is_numeric_task(self.question_type)


def option_text(option: str) -> str:
    """``"A. chair"`` -> ``"chair"`` (an option without a letter prefix is returned stripped)."""
    m = re.match(r"^\s*[A-Za-z]\s*[.)]\s*(.*)$", option, re.S)
    return (m.group(1) if m else option).strip()


def item_from_record(rec: QARecord | Mapping, where: str = "") -> BenchItem:
    """A ``BenchItem`` from a QA record (pydantic model or plain mapping, e.g. a Parquet row).

    Multiple-choice questions take ``mc_answer``; a record without one (the original VSI-Bench
    files) may carry the letter in ``ground_truth``. Raises ValueError naming ``where``.
    """
    r = rec.model_dump() if isinstance(rec, QARecord) else dict(rec)
    rid, qtype = str(r.get("id", "")), str(r.get("question_type", ""))
    if not rid or not qtype:
        raise ValueError(f"{where}: record without id or question_type")
    options = tuple(str(o) for o in (_as_list(r.get("options")) or ()))
    gt = r.get("ground_truth")
    if is_numeric_task(qtype):
        try:
            answer: float | str = float(gt)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {rid}: numeric task {qtype} has non-numeric ground_truth {gt!r}") from None
        if not math.isfinite(answer):
            raise ValueError(f"{where}: {rid}: ground_truth {gt!r} is not finite")
    else:
        letter = r.get("mc_answer")
        if letter is None and isinstance(gt, str) and len(gt.strip()) == 1:
            letter = gt.strip()
        if not isinstance(letter, str) or letter.upper() not in MC_LETTERS:
            raise ValueError(f"{where}: {rid}: multiple-choice task {qtype} has no answer letter (mc_answer)")
        answer = letter.upper()
    return BenchItem(
        id=rid,
        question_type=qtype,
        answer=answer,
        question=str(r.get("question") or ""),
        options=options,
        dataset=str(r.get("dataset") or ""),
        scene_name=str(r.get("scene_name") or ""),
        split=str(r.get("split") or ""),
    )


def _as_list(value: object) -> list | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):  # pandas' missing value
        return None
    if isinstance(value, str):
        return [value]
    return list(value)  # type: ignore[call-overload]


def load_benchmark(path: Path) -> list[BenchItem]:
    """Benchmark items from a ``.parquet`` file (pandas + pyarrow), a QA ``.jsonl`` file or a
    build folder. Duplicate ids are an error."""
    path = Path(path)
    if path.suffix == ".parquet":
        items = [item_from_record(row, f"{path} row {k}") for k, row in enumerate(_parquet_rows(path))]
    else:
        items = []
        for f in qa_files(path):
            items += [item_from_record(row, where) for row, where in read_jsonl(f)]
    dup = [i for i, c in Counter(it.id for it in items).items() if c > 1]
    if dup:
        raise ValueError(f"{path}: {len(dup)} duplicate question ids in the benchmark, e.g. {dup[0]!r}")
    if not items:
        raise ValueError(f"{path}: the benchmark has no questions")
    return items


def _parquet_rows(path: Path) -> list[dict]:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("reading Parquet needs pandas and pyarrow: pip install pandas pyarrow") from None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    check_build_table(path)
    try:
        frame = pd.read_parquet(path)
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from None
    return frame.to_dict(orient="records")


@dataclass
class PredictionSet:
    """Predictions keyed by question id. ``duplicates`` lists the ids seen more than once (each
    extra occurrence once); the first prediction of an id is kept."""

    predictions: dict[str, str]
    duplicates: list[str] = field(default_factory=list)


def load_predictions(path: Path) -> PredictionSet:
    """Read ``{"id": ..., "prediction": ...}`` JSON lines. Numbers are turned into text; a null
    prediction counts as an empty answer (scores 0). Bad lines raise ValueError naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such predictions file")
    preds: dict[str, str] = {}
    dups: list[str] = []
    for row, where in read_jsonl(path):
        if not isinstance(row, dict) or "id" not in row or "prediction" not in row:
            raise ValueError(f"{where}: a prediction line needs 'id' and 'prediction'")
        rid = str(row["id"])
        if rid in preds:
            dups.append(rid)
            continue
        p = row["prediction"]
        preds[rid] = "" if p is None else str(p)
    if not preds:
        raise ValueError(f"{path}: no predictions in the file (empty)")
    return PredictionSet(preds, dups)


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------


def vsibench_token(prediction: str) -> str:
    """The official ``fuzzy_matching``: first piece of ``split(' ')``, trailing '.' stripped, then
    surrounding whitespace stripped."""
    return prediction.split(" ")[0].rstrip(".").strip()


def parse_number_vsibench(prediction: str) -> float | None:
    """``float()`` of the first token, or None when it is not a number."""
    try:
        return float(vsibench_token(prediction))
    except ValueError:
        return None


def parse_letter_vsibench(prediction: str) -> str:
    """The first token, upper-cased (compared with the correct letter)."""
    return vsibench_token(prediction).upper()


_LETTER_ALONE = re.compile(r"^[\s*`'\"(\[]*([A-Da-d])[\s*`'\")\].:]*$")
_LETTER_LEAD = re.compile(r"^[\s*`]*(?:\(([A-D])\)|\[([A-D])\]|([A-D])[.:)\]]|([A-D])\s)")
_LETTER_PHRASE = re.compile(
    r"(?i:answer|option|choice)(?:\s+(?i:is))?\s*[:：]?\s*[*`(\[]*([A-D])[*`)\]]*(?![A-Za-z0-9])"
)


def parse_letter_robust(prediction: str, options: Sequence[str] = ()) -> str:
    """A letter from free text: "b", "(B)", "B)", "[B]", "B: chair", "Answer: B", "The answer is
    (B).", "option B", or the exact text of one option ("chair" when an option is "B. chair");
    otherwise the ``vsibench`` token, upper-cased."""
    text = prediction.strip()
    m = _LETTER_ALONE.match(text)
    if m:
        return m.group(1).upper()
    m = _LETTER_LEAD.match(text)
    if m:
        return next(g for g in m.groups() if g)
    m = _LETTER_PHRASE.search(text)
    if m:
        return m.group(1)
    if options:
        said = _normalise_text(text)
        hits = [k for k, o in enumerate(options) if _normalise_text(option_text(o)) == said]
        if len(hits) == 1 and hits[0] < len(MC_LETTERS):
            return MC_LETTERS[hits[0]]
    return parse_letter_vsibench(prediction)


def _normalise_text(text: str) -> str:
    return " ".join(re.sub(r"[*`\"'.!]+", " ", text.lower()).split())


_NUMBER_WORDS = {
    w: k
    for k, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
_TENS_WORDS = {w: 10 * k for k, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
_UNIT_RE = re.compile(
    r"^\s*(square\s+met(?:er|re)s?|sq\.?\s*m|m\^?2|m²|square\s+(?:feet|foot)|sq\.?\s*ft|ft\^?2|ft²|"
    r"millimet(?:er|re)s?|mm|centimet(?:er|re)s?|cm|met(?:er|re)s?|m|inch(?:es)?|feet|foot|ft)(?![A-Za-z0-9])",
    re.I,
)
_LENGTH_IN_M = {"mm": 0.001, "cm": 0.01, "m": 1.0, "in": 0.0254, "ft": 0.3048}
_AREA_IN_M2 = {"m2": 1.0, "ft2": 0.09290304}
_ANSWER_PHRASE = re.compile(r"(?i:answer|estimate|approximately|about|is)\s*[:：]?\s*(?=[-+]?\.?\d)")


def _unit_key(unit: str) -> str:
    u = " ".join(unit.lower().replace(".", "").split())
    if u.startswith(("square f", "sq ft", "sqft", "ft2", "ft^2", "ft²")):
        return "ft2"
    if u.startswith(("square m", "sq m", "sqm", "m2", "m^2", "m²")):
        return "m2"
    if u.startswith(("milli", "mm")):
        return "mm"
    if u.startswith(("centi", "cm")):
        return "cm"
    if u.startswith(("inch", "in")):
        return "in"
    if u.startswith(("feet", "foot", "ft")):
        return "ft"
    return "m"


def _convert(value: float, unit: str | None, task_unit: str | None) -> float:
    """``value`` in ``unit`` expressed in ``task_unit`` (unchanged when either is unknown or they
    measure different things)."""
    if unit is None or task_unit is None:
        return value
    key = _unit_key(unit)
    if task_unit in _LENGTH_IN_M and key in _LENGTH_IN_M:
        return value * _LENGTH_IN_M[key] / _LENGTH_IN_M[task_unit]
    if task_unit in _AREA_IN_M2 and key in _AREA_IN_M2:
        return value * _AREA_IN_M2[key] / _AREA_IN_M2[task_unit]
    return value


def _words_to_number(text: str) -> float | None:
    """The first number written in words ("three", "twenty-one", "one hundred and five")."""
    tokens = re.findall(r"[a-z]+", text.lower())
    total, found, current = 0, False, 0
    for tok in tokens:
        if tok in _NUMBER_WORDS:
            current += _NUMBER_WORDS[tok]
            found = True
        elif tok in _TENS_WORDS:
            current += _TENS_WORDS[tok]
            found = True
        elif tok == "hundred" and found:
            current = max(current, 1) * 100
        elif tok == "and" and found:
            continue
        elif found:
            break
    total += current
    return float(total) if found else None


def parse_number_robust(prediction: str, question_type: str = "") -> float | None:
    """A number from free text: the number after "answer:" / "is" when present, else the first
    number ("1,200" reads as 1200); a unit right after it ("3.5m", "120 cm", "20 square meters",
    "6 ft") is converted into the task's unit (``NUMERIC_TASK_UNITS``); without digits, a number
    written in words. None when there is no number."""
    text = prediction.replace("**", " ").replace("`", " ")
    try:
        whole = float(text.strip().rstrip("."))
        if math.isfinite(whole):
            return whole
    except ValueError:
        pass
    start = 0
    phrase = _ANSWER_PHRASE.search(text)
    if phrase:
        start = phrase.end()
    for cand in (text[start:], text):
        for m in _NUMBER_RE.finditer(cand):
            if not any(ch.isdigit() for ch in m.group(0)):
                continue
            value = float(m.group(0).replace(",", ""))
            unit = _UNIT_RE.match(cand[m.end():])
            return _convert(value, unit.group(1) if unit else None, NUMERIC_TASK_UNITS.get(question_type))
    return _words_to_number(text)


# --------------------------------------------------------------------------------------------------
# Per-item metrics
# --------------------------------------------------------------------------------------------------


def mean_relative_accuracy(pred: np.ndarray | float, gt: np.ndarray | float) -> np.ndarray:
    """MRA per item, vectorised: ``pred``, ``gt`` broadcastable arrays (any shape S) -> shape S.

    The mean over ``MRA_THRESHOLDS`` of ``|pred - gt| / |gt| <= 1 - theta``; NaN predictions score
    0; ``gt == 0`` scores 1 for an exact 0 prediction and 0 otherwise (see the module docstring).
    """
    p, g = np.broadcast_arrays(np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(p - g) / np.abs(g)
    err = np.where(g == 0, np.where(p == 0, 0.0, np.inf), err)
    tol = 1.0 - np.asarray(MRA_THRESHOLDS, dtype=np.float64)
    return (err[..., None] <= tol).mean(axis=-1)


def mc_correct(parsed_letter: str, answer_letter: str) -> float:
    """1.0 when the parsed letter equals the answer letter, ignoring case."""
    return 1.0 if parsed_letter.lower() == answer_letter.lower() else 0.0


@dataclass(frozen=True)
class ItemScore:
    """The score of one benchmark item. ``status``: ok | missing (no prediction) | unparsed (no
    number could be read; numeric tasks only). ``score`` in [0, 1]."""

    id: str
    question_type: str
    metric: str  # "MRA" | "accuracy"
    score: float
    status: str
    prediction: str | None
    parsed: float | str | None
    answer: float | str
    dataset: str = ""
    scene_name: str = ""


_LMMS_DIGITS = re.compile(r"-?\d+(?:\.\d+)?")
_LMMS_WORD_VALUES = _NUMBER_WORDS | _TENS_WORDS | {"hundred": 100, "thousand": 1000}


def parse_number_lmms_eval(prediction: str) -> float | None:
    """lmms-eval 0.7.3's ``extract_number``: in the lower-cased, stripped text, the first digit
    number ("-3", "3.5" - no exponent, no thousands separator) or the first run of English number
    words ("three", "twenty-one", "three hundred and five"; "and" inside a run is skipped),
    whichever starts first. None when there is neither."""
    text = prediction.strip().lower()
    digits = _LMMS_DIGITS.search(text)
    run: list[str] = []
    run_start = None
    for m in re.finditer(r"[a-z]+", text):
        word = m.group(0)
        if run_start is None:
            if word in _LMMS_WORD_VALUES:
                run_start, run = m.start(), [word]
        elif word in _LMMS_WORD_VALUES:
            run.append(word)
        elif word != "and":
            break
    if digits is not None and (run_start is None or digits.start() < run_start):
        return float(digits.group(0))
    if run_start is None:
        return None
    total = current = 0
    for word in run:
        value = _LMMS_WORD_VALUES[word]
        if value == 100:
            current = max(current, 1) * 100
        elif value == 1000:
            total, current = total + max(current, 1) * 1000, 0
        else:
            current += value
    return float(total + current)


def parse_number(prediction: str, question_type: str, parser: Parser) -> float | None:
    """The number a prediction states under ``parser`` (None when there is none)."""
    if parser == "robust":
        return parse_number_robust(prediction, question_type)
    if parser == "lmms-eval":
        return parse_number_lmms_eval(prediction)
    return parse_number_vsibench(prediction)


def score_items(items: Sequence[BenchItem], predictions: Mapping[str, str], parser: Parser = "vsibench") -> list[ItemScore]:
    """Score every benchmark item against ``predictions`` (id -> text); a missing one scores 0."""
    if parser not in PARSERS:
        raise ValueError(f"unknown parser {parser!r}; choose one of {', '.join(PARSERS)}")
    numeric_idx, numeric_pred, numeric_gt = [], [], []
    parsed: list[float | str | None] = []
    statuses: list[str] = []
    scores = np.zeros(len(items), dtype=np.float64)
    for k, it in enumerate(items):
        pred = predictions.get(it.id)
        if pred is None:
            parsed.append(None)
            statuses.append("missing")
            continue
        if it.numeric:
            value = parse_number(pred, it.question_type, parser)
            parsed.append(value)
            statuses.append("ok" if value is not None else "unparsed")
            if value is not None:
                numeric_idx.append(k)
                numeric_pred.append(value)
                numeric_gt.append(float(it.answer))
        else:
            letter = parse_letter_robust(pred, it.options) if parser == "robust" else parse_letter_vsibench(pred)
            parsed.append(letter)
            statuses.append("ok")
            scores[k] = mc_correct(letter, str(it.answer))
    if numeric_idx:
        scores[numeric_idx] = mean_relative_accuracy(np.array(numeric_pred), np.array(numeric_gt))
    return [
        ItemScore(
            id=it.id,
            question_type=it.question_type,
            metric="MRA" if it.numeric else "accuracy",
            score=float(scores[k]),
            status=statuses[k],
            prediction=predictions.get(it.id),
            parsed=parsed[k],
            answer=it.answer,
            dataset=it.dataset,
            scene_name=it.scene_name,
        )
        for k, it in enumerate(items)
    ]


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------


@dataclass
class TaskScore:
    """A reported task: ``score`` is the mean item score x 100; ``parts`` the per-question-type
    means x 100 that were averaged (one entry unless the task merges variants)."""

    task: str
    metric: str
    score: float
    n: int
    missing: int
    parts: dict[str, float] = field(default_factory=dict)


ID_EXAMPLES = 5
"""How many ids of each kind (missing, unknown, duplicate) a report names."""


@dataclass
class EvalReport:
    """Scores of one prediction set. ``overall`` = unweighted mean of the task scores (x 100)."""

    tasks: dict[str, TaskScore]
    overall: float
    n_items: int
    n_missing: int
    n_unparsed: int
    n_unknown: int = 0
    n_duplicates: int = 0
    parser: str = "vsibench"
    merge: str = "vsibench"
    per_dataset: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    id_examples: dict[str, list[str]] = field(default_factory=dict)
    """The first few (``ID_EXAMPLES``) ids of each kind: ``missing`` (benchmark questions without a
    prediction), ``unknown`` (prediction ids not in the benchmark), ``duplicate`` (repeated ids)."""

    @property
    def n_matched(self) -> int:
        """Benchmark questions that have a prediction."""
        return self.n_items - self.n_missing

    def to_json(self) -> dict:
        return asdict(self)


def summarize(
    scores: Sequence[ItemScore],
    *,
    n_unknown: int = 0,
    n_duplicates: int = 0,
    parser: str = "vsibench",
    merge: MergeMode = "vsibench",
) -> EvalReport:
    """Per question_type means, merged variants (``MERGE_MODES[merge]``), overall (see the module
    docstring)."""
    if merge not in MERGE_MODES:
        raise ValueError(f"unknown merge mode {merge!r}; choose one of {', '.join(MERGE_MODES)}")
    tasks = _task_scores(scores, merge)
    overall = float(np.mean([t.score for t in tasks.values()])) if tasks else 0.0
    datasets = sorted({s.dataset for s in scores})
    per_dataset = {}
    if len(datasets) > 1:
        for ds in datasets:
            sub = _task_scores([s for s in scores if s.dataset == ds], merge)
            per_dataset[ds] = float(np.mean([t.score for t in sub.values()]))
    return EvalReport(
        tasks=tasks,
        overall=overall,
        n_items=len(scores),
        n_missing=sum(s.status == "missing" for s in scores),
        n_unparsed=sum(s.status == "unparsed" for s in scores),
        n_unknown=n_unknown,
        n_duplicates=n_duplicates,
        parser=parser,
        merge=merge,
        per_dataset=per_dataset,
    )


def _task_scores(scores: Sequence[ItemScore], merge: MergeMode) -> dict[str, TaskScore]:
    by_type: dict[str, list[ItemScore]] = {}
    for s in scores:
        by_type.setdefault(s.question_type, []).append(s)
    means = {q: 100.0 * float(np.mean([s.score for s in ss])) for q, ss in by_type.items()}
    out: dict[str, TaskScore] = {}
    for q in sorted(by_type, key=lambda q: (reported_task(q, merge), q)):
        task = reported_task(q, merge)
        ss = by_type[q]
        ts = out.setdefault(task, TaskScore(task, ss[0].metric, 0.0, 0, 0))
        ts.n += len(ss)
        ts.missing += sum(s.status == "missing" for s in ss)
        ts.parts[q] = means[q]
    for ts in out.values():
        ts.score = float(np.mean(list(ts.parts.values())))
    return out


def evaluate(
    items: Sequence[BenchItem], preds: PredictionSet, parser: Parser = "vsibench", merge: MergeMode = "vsibench"
) -> tuple[EvalReport, list[ItemScore]]:
    """Score a prediction set against the benchmark; counts unknown and duplicate ids."""
    known = {it.id for it in items}
    unknown = [rid for rid in preds.predictions if rid not in known]
    scores = score_items(items, preds.predictions, parser)
    report = summarize(scores, n_unknown=len(unknown), n_duplicates=len(preds.duplicates), parser=parser, merge=merge)
    missing = [s.id for s in scores if s.status == "missing"]
    report.id_examples = {k: v[:ID_EXAMPLES] for k, v in
                          (("missing", missing), ("unknown", unknown), ("duplicate", list(preds.duplicates))) if v}
    return report, scores


# --------------------------------------------------------------------------------------------------
# Result files
# --------------------------------------------------------------------------------------------------


def write_results(report: EvalReport, scores: Iterable[ItemScore], out_dir: Path, extra: Mapping | None = None) -> dict[str, Path]:
    """Write ``results.json`` (the report, plus ``extra``), ``results.csv`` (one row per reported
    task, then ``overall``) and ``scores.jsonl`` (one line per benchmark item) into ``out_dir``."""
    from vlm3r.schemas.io import atomic_write_bytes, atomic_write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = report.to_json()
    if extra:
        payload.update(extra)
    paths = {"json": out_dir / "results.json", "csv": out_dir / "results.csv", "scores": out_dir / "scores.jsonl"}
    atomic_write_json(paths["json"], payload)
    lines = ["task,metric,n,missing,score"]
    for t in report.tasks.values():
        lines.append(f"{t.task},{t.metric},{t.n},{t.missing},{t.score:.4f}")
    lines.append(f"overall,mean,{report.n_items},{report.n_missing},{report.overall:.4f}")
    atomic_write_bytes(paths["csv"], ("\n".join(lines) + "\n").encode("utf-8"))
    atomic_write_bytes(
        paths["scores"], b"".join(json.dumps(asdict(s), ensure_ascii=False).encode("utf-8") + b"\n" for s in scores)
    )
    return paths
