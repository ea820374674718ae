"""Examples → token ids with labels → padded batches, and the order batches are drawn in.

One training example, as `encode_example` lays it out (the P soft-prompt vectors of prompt tuning are
prepended later by the model, but their positions are counted here):

    [ P soft prompt ][ article ........... ][ separator ][ summary ][EOS]  ← at most max_length
      (not in ids)     labels -100            -100         ids       EOS

- The summary is capped at `max_summary_tokens` first; the article is cut to whatever `max_length` leaves,
  so the summary is never cut to make room for the article (CNN/DM articles average 712-980 GPT-2 tokens).
- Article, separator and summary are tokenised separately and their ids concatenated. Tokenised in one
  go, the article's last characters can merge with the separator's first (GPT-2 turns an article's final
  "\n" and a separator's leading "\n" into one "\n\n" token), so the separator's ids would change with
  the article. Separately, they are always `tokenizer(separator)`: the same cue in every example and at
  decoding time.
- Exactly one EOS is labelled, so the model learns to stop. GPT-2 pads with EOS too, so `collate` marks
  padding -100 by position, never by token id. User text is tokenised as text: the characters
  `<|endoftext|>` in an article or summary become ordinary tokens, never a second EOS.
- Text is cut by characters (10 per token of the budget) before tokenising, so a 100,000-word article
  costs no more than a short one: GPT-2 tokens average about 4 characters of English.

`StepBatches` says which examples each optimizer step trains on. Loading and tokenising whole splits is
`minisumm.training.encode_splits` (train.py adds an on-disk cache: `minisumm.tools.token_cache`).
"""

from __future__ import annotations

import random
from itertools import chain
from typing import Iterator

import numpy as np
import torch

from minisumm.config import DataConfig
from minisumm.data import Example
from minisumm.errors import MinisummError

IGNORE_INDEX = -100
CHARS_PER_TOKEN_CAP = 10
TOKENIZE_CHUNK = 1000  # texts per tokenizer call: batched calls let the Rust tokenizer use every core



def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    # verbose=False: articles are longer than 1,024 tokens before they are cut, which is not worth a warning;
    # split_special_tokens: "<|endoftext|>" written in the text is text, not the EOS token
    return tokenizer(texts, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]


def _layout(article_ids: list[int], separator_ids: list[int], summary_ids: list[int], eos_id: int,
            data_cfg: DataConfig, prefix_tokens: int) -> dict[str, list[int]]:
    """Cap the summary, cut the article to the room left, and label the summary and one EOS."""
    summary_ids = summary_ids[:data_cfg.max_summary_tokens]
    room = data_cfg.max_length - prefix_tokens - len(separator_ids) - len(summary_ids) - 1
    if room < 1:
        raise MinisummError(f"--max-length {data_cfg.max_length} leaves no room for the article: the soft "
                            f"prompt ({prefix_tokens}), separator ({len(separator_ids)}), summary "
                            f"({len(summary_ids)}) and EOS fill it; raise --max-length or lower "
                            f"--max-summary-tokens or --prompt-length.")
    context = article_ids[:room] + separator_ids
    return {"input_ids": context + summary_ids + [eos_id],
            "labels": [IGNORE_INDEX] * len(context) + summary_ids + [eos_id]}


def encode_example(tokenizer, example: Example, data_cfg: DataConfig, prefix_tokens: int) -> dict[str, list[int]]:
    """One example as `{"input_ids", "labels"}` (equal-length lists), laid out as the module docstring shows."""
    return encode_examples(tokenizer, [example], data_cfg, prefix_tokens)[0]


def encode_examples(tokenizer, examples: list[Example], data_cfg: DataConfig, prefix_tokens: int, progress=None
                    ) -> list[dict[str, list[int]]]:
    """`encode_example` for many examples, tokenising in batches (several times faster); `progress`, a tqdm
    bar or None, advances by the examples of each batch."""
    char_cap = data_cfg.max_length * CHARS_PER_TOKEN_CAP
    separator_ids = _ids(tokenizer, [data_cfg.separator])[0]
    encoded = []
    for start in range(0, len(examples), TOKENIZE_CHUNK):
        chunk = examples[start:start + TOKENIZE_CHUNK]
        articles = _ids(tokenizer, [e.article[:char_cap] for e in chunk])
        summaries = _ids(tokenizer, [e.summary[:char_cap] for e in chunk])
        encoded += [_layout(article, separator_ids, summary, tokenizer.eos_token_id, data_cfg, prefix_tokens)
                    for article, summary in zip(articles, summaries)]
        if progress is not None:
            progress.update(len(chunk))
    return encoded


def encode_prompt(tokenizer, article: str, data_cfg: DataConfig, prefix_tokens: int, max_new_tokens: int
                  ) -> list[int]:
    """Article ids + separator ids for decoding, the article cut so that prefix + prompt + max_new_tokens
    fit in max_length."""
    separator_ids = _ids(tokenizer, [data_cfg.separator])[0]
    room = data_cfg.max_length - prefix_tokens - len(separator_ids) - max_new_tokens
    if room < 1:
        raise MinisummError(f"--max-length {data_cfg.max_length} leaves no room for the article: the soft "
                            f"prompt ({prefix_tokens}), separator ({len(separator_ids)}) and {max_new_tokens} "
                            f"new tokens fill it; generate fewer new tokens or lower --prompt-length.")
    article_ids = _ids(tokenizer, [article[:data_cfg.max_length * CHARS_PER_TOKEN_CAP]])[0]
    return article_ids[:room] + separator_ids


def collate(examples: list[dict[str, list[int]]], pad_id: int, pin: bool = False) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: `input_ids`, `attention_mask`, `labels`, each (B, T_max) int64, and
    `label_slots` (`label_slots`). Built in numpy, each tensor in one pass over all examples' ids, and handed to
    torch without a copy; `pin` puts them in page-locked memory, so that copies to a GPU can run asynchronously."""
    lengths = np.array([len(e["input_ids"]) for e in examples])  # (B,)
    real = np.arange(lengths.max()) < lengths[:, None]  # (B, T): row-major, as the ids are chained below
    arrays = {}
    for name, fill in (("input_ids", pad_id), ("labels", IGNORE_INDEX)):
        arrays[name] = np.full(real.shape, fill, dtype=np.int64)
        arrays[name][real] = np.fromiter(chain.from_iterable(e[name] for e in examples), np.int64, lengths.sum())
    arrays["attention_mask"] = real.astype(np.int64)
    arrays["label_slots"] = label_slots(arrays["labels"])
    batch = {name: torch.from_numpy(array) for name, array in arrays.items()}
    return {name: t.pin_memory() for name, t in batch.items()} if pin else batch


def label_slots(labels: np.ndarray) -> np.ndarray:
    """(B, T) labels → (B, Q) `label_slots`: in each row, the positions t of `labels[:, 1:]` that hold a label
    (the hidden state at t predicts the label at t+1), in order, then unlabelled positions as spare slots up to
    Q, the most labels any row has. The shape tells the host Q without asking the device
    (`minisumm.speedups.labelled_positions`), and every spare slot's target is IGNORE_INDEX."""
    unlabelled = labels[:, 1:] == IGNORE_INDEX  # (B, T-1)
    most = int((~unlabelled).sum(1).max(initial=0))
    slots = np.argsort(unlabelled, axis=1, kind="stable")[:, :most]  # (B, Q): False (labelled) sorts first
    return np.ascontiguousarray(slots, dtype=np.int64)


def batch_order(lengths: list[int], batch_size: int, *, seed: int, epoch: int, shuffle: bool = True,
                group_by_length: bool = True, mega_batch: int = 50) -> list[list[int]]:
    """Batches of example indices for one epoch; every index appears once, the last batch may be short.

    Without shuffling: 0, 1, 2, ... in order. With shuffling and grouping: shuffle, cut into mega-batches
    of `mega_batch * batch_size`, sort each by length (longest first), cut into batches, then shuffle the
    batches (the mega-batch idea of Hugging Face's LengthGroupedSampler). Examples in a batch have similar
    lengths, so less compute goes to padding, while the epoch still mixes examples of every length. Seeded
    by (seed, epoch) alone: the same epoch always gives the same order, whatever else used the random
    generators.
    """
    indices = list(range(len(lengths)))
    if not shuffle:
        return [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    rng = random.Random(f"batch-order-{seed}-{epoch}")
    rng.shuffle(indices)
    if group_by_length:
        span = mega_batch * batch_size
        indices = [i for start in range(0, len(indices), span)
                   for i in sorted(indices[start:start + span], key=lambda i: -lengths[i])]
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


class StepBatches:
    """Which examples each optimizer step trains on, for this process, and the validation batches.

    Epoch e's global micro-batches come from `batch_order` seeded by (seed, e), so resuming needs only the step
    number. Step s of an epoch takes micro-batches s·k … s·k + k - 1 (k = `grad_accum`), and under DDP each of
    the `world` processes takes every world-th example of each (`rank::world`). Validation runs in a fixed
    order, sorted by length so that its batches carry little padding, split between processes the same way.
    `pin` collates into page-locked memory (for a GPU); `prefetch` collates a step ahead, while the device works.
    """

    def __init__(self, train_set, val_set, eos_id: int, *, batch_size: int, grad_accum: int, seed: int,
                 group_by_length: bool, eval_batches: int | None = None, rank: int = 0, world: int = 1,
                 pin: bool = False):
        self.train_set, self.val_set, self.eos_id = train_set, val_set, eos_id
        self.batch_size, self.grad_accum, self.seed, self.group = batch_size, grad_accum, seed, group_by_length
        self.eval_batches, self.rank, self.world, self.pin = eval_batches, rank, world, pin
        self.lengths = [len(example["input_ids"]) for example in train_set]
        first_epoch = self.epoch(0)
        self.steps_per_epoch = -(-len(first_epoch) // grad_accum)  # ceil: a short last step still counts
        # share of the positions in a batch that are padding (per process, with length grouping if on)
        self.padding_fraction = padding_fraction([ids[rank::world] for ids in first_epoch], self.lengths)
        self._cached = (0, first_epoch)
        self._prefetched: tuple[int, list[dict[str, torch.Tensor]]] | None = None

    def epoch(self, epoch: int) -> list[list[int]]:
        """This epoch's global micro-batches (indices into the train split)."""
        batches = batch_order(self.lengths, self.batch_size * self.world, seed=self.seed, epoch=epoch,
                              shuffle=True, group_by_length=self.group)
        return [b for b in batches if len(b) >= self.world]  # every process needs a share of every micro-batch

    def for_step(self, step: int) -> list[dict[str, torch.Tensor]]:
        """This process's micro-batches of optimizer step `step` (0-based), collated (or taken from `prefetch`)."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] == step:
            return prefetched[1]
        epoch, index = divmod(step, self.steps_per_epoch)
        if self._cached[0] != epoch:
            self._cached = (epoch, self.epoch(epoch))
        chunk = self._cached[1][index * self.grad_accum:(index + 1) * self.grad_accum]
        return [collate([self.train_set[i] for i in ids[self.rank::self.world]], self.eos_id, self.pin)
                for ids in chunk]

    def prefetch(self, step: int) -> None:
        """Collate step `step`'s micro-batches now, for the next `for_step(step)`."""
        self._prefetched = (step, self.for_step(step))

    def validation(self) -> LazyBatches:
        """This process's share of the validation batches (at most `eval_batches` in all, when set), each
        collated when it is reached."""
        by_length = sorted(range(len(self.val_set)), key=lambda i: len(self.val_set[i]["input_ids"]))
        order = [by_length[i:i + self.batch_size] for i in range(0, len(by_length), self.batch_size)]
        order = order[:self.eval_batches] if self.eval_batches else order
        return LazyBatches([[self.val_set[i] for i in ids] for ids in order[self.rank::self.world]], self.eos_id,
                           self.pin)


class LazyBatches:
    """Batches of examples, each collated as iteration reaches it; `len` is known up front (a progress bar's)."""

    def __init__(self, batches: list[list[dict[str, list[int]]]], pad_id: int, pin: bool = False):
        self.batches, self.pad_id, self.pin = batches, pad_id, pin

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return (collate(examples, self.pad_id, self.pin) for examples in self.batches)


def padding_fraction(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of padding among all positions when each batch is padded to its longest example."""
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    real = sum(lengths[i] for batch in batches for i in batch)
    return (padded - real) / padded if padded else 0.0
