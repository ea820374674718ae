"""Prefix tuning: trainable keys and values in front of every attention layer (Li & Liang 2021, "Prefix-Tuning:
Optimizing Continuous Prompts for Generation", arXiv:2101.00190).

The one idea: a soft prompt enters at the bottom and has to steer twelve frozen blocks from there. Prefix
tuning gives every layer its own P keys and P values, as if P tokens had already been read into the KV
cache: every attention of every layer reads them beside the text's own. GPT-2 stays frozen.

    layer l:  text (B, T, C) ──ln_1, c_attn──► q (B, H, T, D)   k, v (B, H, T, D)
              prefix keys   (H, P, D) ──expand──► (B, H, P, D) ──cat before k──► keys   (B, H, P+T, D)
              prefix values (H, P, D) ──expand──► (B, H, P, D) ──cat before v──► values (B, H, P+T, D)
              mask (B, T) ──ones (B, P) in front──► (B, P+T)     softmax(q · keysᵀ / √D) · values

The prefix IS the first P entries of a KV cache: `Prefix.cache` hands GPT-2 a cache holding it, and GPT-2's
attention appends the text's keys and values after it, in training and in decoding alike. Its trainable
tensor `embedding` is (P, L·2·C), one row per prefix position laid out [layer][key, value][head][D], which is
PEFT's layout for prefix tuning. P = 20 on GPT-2 small: 20 × 12 × 2 × 768 = 368,640 numbers.

Positions and mask follow Li & Liang's code and PEFT: the prefix is given keys and values, with no position
embedding of its own, but GPT-2 numbers the text after what the cache holds, so the text starts at position
P, as behind a soft prompt (`minisumm.model.body` counts the prefix's P columns of the mask as real, so left
padding keeps each row's positions P, P+1, ...); every real token attends to the whole prefix.

Reparameterisation (`--prefix-projection`). Li & Liang found the prefix unstable to train directly and trained
a P × C embedding through a two-layer MLP instead, C → C (tanh) → L·2·C; after training only the MLP's
output matters, so best/ holds it folded into the plain (P, L·2·C) tensor (`fold`). The hidden width is C,
PEFT's default (Li & Liang used 512 on GPT-2 medium's 1,024). On GPT-2 small, P = 20:
P·C + (C·C + C) + (C·L·2·C + L·2·C) = 15,360 + 590,592 + 14,174,208 = 14,780,160 trainable numbers. It is
off by default: on tiny-news, each at its best rate on the validation split, the plain prefix reached a
lower validation loss in the same 100 steps and about the same time (3.12 against 3.56; `config.TINY_NEWS_LR`).

Initialisation, from `--prompt-init`: without the projection, the keys and values GPT-2 itself computes for
real tokens (the `--prompt-init-text` or sampled frequent tokens, cycled or cut to P); Li & Liang (§7.4) found
such "real word" activations better than random ones, most of all with little data. With the projection, the
MLP's input is initialised as a soft prompt is (`minisumm.methods.prompt.initial_prompt`), the MLP as nn.Linear.

A zero prefix is not neutral: a zero key scores 0 and still takes softmax weight e⁰ = 1 from every query, so
each attention output shrinks by Z / (Z + P) (Z the sum over the text's exp-scores). Only an empty prefix
leaves GPT-2 as it was (both tested).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

from minisumm.methods.prompt import RANDOM_RANGE, initial_prompt, initial_token_ids


class Prefix(nn.Module):
    """P keys and values for each of L layers: `embedding` (P, L·2·C), or with `projection` a (P, C) embedding
    that `mlp` maps to (P, L·2·C)."""

    def __init__(self, embedding: torch.Tensor, n_layer: int, n_head: int, projection: bool = False):
        super().__init__()
        self.n_layer, self.n_head = n_layer, n_head
        self.embedding = nn.Parameter(embedding.detach().clone())  # (P, L·2·C), or (P, C) with the projection
        self.mlp = None
        if projection:
            width = embedding.shape[1]  # C
            like = {"device": embedding.device, "dtype": embedding.dtype}
            self.mlp = nn.Sequential(nn.Linear(width, width, **like), nn.Tanh(),
                                     nn.Linear(width, n_layer * 2 * width, **like))

    @property
    def length(self) -> int:
        return self.embedding.shape[0]

    def flat(self) -> torch.Tensor:
        """(P, L·2·C): the prefix as plain numbers, through the MLP when there is one."""
        return self.embedding if self.mlp is None else self.mlp(self.embedding)

    def keys_values(self) -> torch.Tensor:
        """(L, 2, H, P, D): layer, key (0) or value (1), head, prefix position, head dimension."""
        flat = self.flat()  # (P, L·2·C)
        head_dim = flat.shape[1] // (self.n_layer * 2 * self.n_head)
        return flat.view(self.length, self.n_layer, 2, self.n_head, head_dim).permute(1, 2, 3, 0, 4)

    def cache(self, batch: int | None, into: DynamicCache | None = None) -> Cache:
        """A KV cache that starts with the prefix: `into` (an empty DynamicCache, for decoding) filled with it
        for `batch` rows, or, with no `into` (the training forward), a fixed cache that returns prefix + text
        for any batch and keeps nothing."""
        kv = self.keys_values()  # (L, 2, H, P, D)
        if into is None:
            return Cache(layers=[FixedPrefixLayer(kv[layer, 0], kv[layer, 1]) for layer in range(self.n_layer)])
        for layer in range(self.n_layer):
            into.update(kv[layer, 0].expand(batch, -1, -1, -1), kv[layer, 1].expand(batch, -1, -1, -1), layer)
        return into


class FixedPrefixLayer(DynamicLayer):
    """One layer of the training forward's cache: holds the prefix's keys and values (H, P, D) and never grows.
    `update` returns prefix + the text's keys and values and stores nothing, so a block that activation
    checkpointing runs again in the backward pass reads the same prefix, not one with the text appended."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.keys, self.values = keys[None], values[None]  # (1, H, P, D)
        self.device, self.is_initialized = keys.device, True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        batch = key_states.shape[0]  # (B, H, T, D); under autocast the text's are bf16/fp16: follow them
        keys = self.keys.to(key_states.dtype).expand(batch, -1, -1, -1)  # (B, H, P, D)
        values = self.values.to(value_states.dtype).expand(batch, -1, -1, -1)
        return torch.cat([keys, key_states], dim=-2), torch.cat([values, value_states], dim=-2)  # (B, H, P+T, D)


def initial_prefix(model, length: int, init: str, text: str = "", tokenizer=None) -> torch.Tensor:
    """(P, L·2·C) starting keys and values: GPT-2's own for real tokens ("text", "vocab"), or uniform random."""
    config = model.config
    if init == "random":
        width = config.n_layer * 2 * config.n_embd
        return torch.empty(length, width, device=model.transformer.wte.weight.device).uniform_(-RANDOM_RANGE,
                                                                                              RANDOM_RANGE)
    ids = initial_token_ids(model, length, init, text, tokenizer)  # (P,)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            cache = DynamicCache(config=config)
            model.transformer(input_ids=ids[None], cache=cache, use_cache=True)
    finally:
        model.train(was_training)
    kv = torch.stack([torch.stack([layer.keys[0], layer.values[0]]) for layer in cache.layers])  # (L, 2, H, P, D)
    return kv.permute(3, 0, 1, 2, 4).reshape(length, -1)  # (P, L·2·C), PEFT's layout


def add_prefix(model, length: int, projection: bool, init: str, text: str = "", tokenizer=None) -> Prefix:
    """Attach a Prefix as `model.prefix`, where `minisumm.model.body` looks for it."""
    config = model.config
    start = (initial_prompt(model, length, init, text, tokenizer) if projection
             else initial_prefix(model, length, init, text, tokenizer))
    prefix = Prefix(start, config.n_layer, config.n_head, projection)
    model.add_module("prefix", prefix)
    return prefix


def fold(tensors: dict[str, torch.Tensor], n_layer: int, n_head: int) -> dict[str, torch.Tensor]:
    """A projected prefix's trained tensors (`prefix.embedding`, `prefix.mlp.*`) → `{"prefix.embedding": the
    MLP's output (P, L·2·C)}`, what a prefix without the projection holds: the same keys and values."""
    with torch.random.fork_rng(devices=[]):  # the MLP's fresh values are overwritten: keep the run's random stream
        projected = Prefix(tensors["prefix.embedding"], n_layer, n_head, projection=True)
    projected.load_state_dict({name.removeprefix("prefix."): t for name, t in tensors.items()})
    with torch.no_grad():
        return {"prefix.embedding": projected.flat().contiguous()}
