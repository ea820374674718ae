"""Summaries as evaluate.py and summarize decode them: a `DecodeConfig` over `minisumm.generate`.

    summarize(model, tokenizer, articles, data_cfg, prefix_tokens, decode) → one summary per article

Prompts are laid out exactly as in training (`minisumm.batching.encode_prompt`), decoded longest first, and
searched greedily (`minisumm.generate.greedy`) or, with `--beams K`, by beam search
(`minisumm.tools.beam_search`).
"""

from __future__ import annotations

from typing import Callable

from minisumm.batching import encode_prompt
from minisumm.config import DecodeConfig
from minisumm.generate import decode_texts, generate, greedy
from minisumm.tools.beam_search import with_beams


def search_for(decode: DecodeConfig):
    """`minisumm.generate.generate`'s `search` for these settings: greedy for one beam, else beam search."""
    return greedy if decode.beams == 1 else with_beams(decode.beams, decode.length_penalty)


def summarize(model, tokenizer, articles: list[str], data_cfg, prefix_tokens: int, decode: DecodeConfig, *,
              batch_size: int | None = None, progress: Callable[[int], object] | None = None) -> list[str]:
    """Summarise `articles` (same order out as in): encode, batch by length, decode, detokenise.

    Prompts are built by `encode_prompt` exactly as in training (article truncated so that the soft prompt,
    article, separator and `decode.max_new_tokens` fit the model's positions). They are decoded longest
    first, so similar lengths share a batch (less padding) and an out-of-memory error shows at once.
    `batch_size` and `progress` go to `generate`.
    """
    prompts = [encode_prompt(tokenizer, article, data_cfg, prefix_tokens, decode.max_new_tokens)
               for article in articles]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    generated = generate(model, [prompts[i] for i in order], eos_id=tokenizer.eos_token_id,
                         pad_id=tokenizer.pad_token_id, max_new_tokens=decode.max_new_tokens,
                         min_new_tokens=decode.min_new_tokens, no_repeat_ngram=decode.no_repeat_ngram,
                         batch_size=batch_size, progress=progress, search=search_for(decode))
    in_input_order: list[list[int]] = [[] for _ in articles]
    for position, index in enumerate(order):
        in_input_order[index] = generated[position]
    return decode_texts(tokenizer, in_input_order)
