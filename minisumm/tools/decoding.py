"""Summaries as evaluate.py and summarize decode them: a `DecodeConfig` over `minisumm.generate`.

    ready_to_decode(model, precision, speedups)                        the model as both commands decode with it
    summarize(model, tokenizer, articles, data_cfg, prefix_tokens, decode) → one summary per article

Prompts are laid out exactly as in training (`minisumm.batching.encode_prompt`), decoded in batches of similar
length (`minisumm.generate.generate`), and searched greedily (`minisumm.generate.greedy`) or, with
`--beams K`, by beam search (`minisumm.tools.beam_search`).
"""

from __future__ import annotations

from typing import Callable

from minisumm import methods
from minisumm.batching import encode_prompt
from minisumm.config import DecodeConfig
from minisumm.device import low_precision_dtype
from minisumm.generate import decode_texts, generate, greedy
from minisumm.speedups.fused_gelu import use_fused_gelu
from minisumm.tools.beam_search import with_beams

CUDA_DECODE_BATCH_SIZE = 64  # prompts per batch on a GPU: wide enough that the GPU, not the host, sets the pace


def decode_batch_size(requested: int | None, device, loss_batch_size: int) -> int:
    """`--decode-batch-size`, or its default: CUDA_DECODE_BATCH_SIZE on CUDA, where a batch of 8 leaves the GPU
    mostly idle while the host queues each token's kernels; the loss pass's batch size on a CPU, whose time
    grows with the batch anyway."""
    if requested is not None:
        return requested
    return CUDA_DECODE_BATCH_SIZE if device.type == "cuda" else loss_batch_size


def ready_to_decode(model, precision: str, speedups: bool = True) -> None:
    """Make `model` what evaluate.py and summarize decode with, in place: with `speedups`, LoRA folded into its
    weights (decoding then costs what the base model costs) and GPT-2's GELU as one fused kernel (the same
    function); then the model cast to bf16 or fp16 when `precision` asks for it (why a cast and not
    autocast: `minisumm.generate`'s docstring)."""
    if speedups:
        methods.merge(model)
        use_fused_gelu(model)
    dtype = low_precision_dtype(precision)
    if dtype is not None:
        model.to(dtype)


def search_for(decode: DecodeConfig):
    """`minisumm.generate.generate`'s `search` for these settings: greedy for one beam, else beam search."""
    return greedy if decode.beams == 1 else with_beams(decode.beams, decode.length_penalty)


def summarize(model, tokenizer, articles: list[str], data_cfg, prefix_tokens: int, decode: DecodeConfig, *,
              batch_size: int | None = None, progress: Callable[[int], object] | None = None) -> list[str]:
    """Summarise `articles` (same order out as in): encode, decode in batches of similar length, detokenise.

    Prompts are built by `encode_prompt` exactly as in training (article truncated so that the soft prompt,
    article, separator and `decode.max_new_tokens` fit the model's positions). `batch_size` (prompts decoded
    together) and `progress` go to `generate`.
    """
    prompts = [encode_prompt(tokenizer, article, data_cfg, prefix_tokens, decode.max_new_tokens)
               for article in articles]
    generated = generate(model, prompts, eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id,
                         max_new_tokens=decode.max_new_tokens, min_new_tokens=decode.min_new_tokens,
                         no_repeat_ngram=decode.no_repeat_ngram, batch_size=batch_size, progress=progress,
                         search=search_for(decode))
    return decode_texts(tokenizer, generated)
