"""Prompt tuning: a few trainable input vectors in front of every example (Lester et al. 2021, "The Power
of Scale for Parameter-Efficient Prompt Tuning", arXiv:2104.08691).

The one idea: keep the whole network frozen and learn only P "virtual token" embeddings that are
prepended to the real tokens' embeddings. The model reads them like words it has never seen; gradient
descent finds the words that make it summarise.

    ids (B, T) ──wte──► (B, T, C) ─┐
                                   ├──cat──► (B, P+T, C) ──► GPT-2 (frozen) ──► hidden of the T real tokens
    soft prompt (P, C) ──expand──► (B, P, C)
    mask (B, T) ──────────────────────cat with ones (B, P)──► (B, P+T)

With GPT-2 small, P=20 trains 20 × 768 = 15,360 numbers. Details that matter:
- The prompt goes FIRST, before any left padding, with mask 1, so it takes positions 0…P-1 and the text
  starts at position P whatever its padding (`minisumm.model.body` counts positions over real tokens only).
- Each virtual token uses one of GPT-2's 1,024 positions: the article budget shrinks by P.
- Initialisation matters most for small models. The paper's ablation compared three: embeddings of the
  task's class labels won, then embeddings of tokens sampled from the 5,000 most frequent ("vocab"; GPT-2's
  BPE ids are roughly ordered by merge frequency, so its lowest ids stand in for the most frequent), then
  random vectors ("random": uniform in [-0.5, 0.5] as in the paper; N(0, 1) would put them far off the
  scale of the learned token embeddings, whose entries are ~0.1 in GPT-2). Summaries have no class labels;
  the default here, the embeddings of a task description ("text"), is the nearest kin and PEFT's
  `PromptTuningInit.TEXT`, not one of the paper's three.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from minisumm.errors import MinisummError

FREQUENT_TOKENS = 5000  # Lester et al. sample the "vocab" init from the 5,000 most common tokens
RANDOM_RANGE = 0.5  # "random" init: uniform in [-0.5, 0.5], as in Lester et al.'s ablation


class SoftPrompt(nn.Module):
    """P trainable embeddings (`embedding`, shape (P, C)) prepended to every sequence."""

    def __init__(self, initial: torch.Tensor):
        super().__init__()
        self.embedding = nn.Parameter(initial.detach().clone())  # (P, C)

    @property
    def length(self) -> int:
        return self.embedding.shape[0]

    def prepend(self, embeds: torch.Tensor, attention_mask: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, C) embeddings and (B, T) mask → (B, P+T, C) and (B, P+T), the prompt first with mask 1
        (no mask, None: still none)."""
        batch = embeds.shape[0]
        prompt = self.embedding.to(embeds.dtype).unsqueeze(0).expand(batch, -1, -1)  # (B, P, C)
        if attention_mask is None:
            return torch.cat([prompt, embeds], dim=1), None
        prompt_mask = attention_mask.new_ones(batch, self.length)  # (B, P)
        return torch.cat([prompt, embeds], dim=1), torch.cat([prompt_mask, attention_mask], dim=1)


def initial_prompt(model, length: int, init: str, text: str = "", tokenizer=None) -> torch.Tensor:
    """The (P, C) starting values of a soft prompt, per `init` ("text", "vocab" or "random").

    "text" needs the model's tokenizer (a ValueError if none is given; a MinisummError if the text has
    no tokens). "vocab" and "random" draw from torch's global RNG, which the trainer seeds.
    """
    wte = model.transformer.wte.weight  # (V, C)
    if init == "random":
        return torch.empty(length, wte.shape[1], device=wte.device, dtype=wte.dtype).uniform_(-RANDOM_RANGE,
                                                                                               RANDOM_RANGE)
    return wte[initial_token_ids(model, length, init, text, tokenizer)].detach().clone()  # (P, C)


def initial_token_ids(model, length: int, init: str, text: str = "", tokenizer=None) -> torch.Tensor:
    """(P,) token ids to start from: `text`'s tokens cycled or cut to P ("text"), or frequent ones ("vocab")."""
    wte = model.transformer.wte.weight  # (V, C)
    if init == "text":
        if tokenizer is None:
            raise ValueError("prompt_init='text' needs the tokenizer: pass tokenizer= to methods.apply.")
        token_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not token_ids:
            raise MinisummError(f"--prompt-init-text {text!r} has no tokens; give a short task description "
                                f"such as 'Summarize the following news article:'.")
        repeats = -(-length // len(token_ids))  # ceil: cycle a short text, cut a long one, to P tokens
        return torch.tensor((token_ids * repeats)[:length], device=wte.device)
    if init == "vocab":
        return torch.randint(0, min(FREQUENT_TOKENS, wte.shape[0]), (length,)).to(wte.device)
    raise MinisummError(f"Unknown --prompt-init {init!r}; choose text, vocab or random.")


def add_soft_prompt(model, length: int, init: str, text: str = "", tokenizer=None) -> SoftPrompt:
    """Attach a SoftPrompt as `model.soft_prompt`, where `minisumm.model.embed` looks for it."""
    soft_prompt = SoftPrompt(initial_prompt(model, length, init, text, tokenizer))
    model.add_module("soft_prompt", soft_prompt)
    return soft_prompt
