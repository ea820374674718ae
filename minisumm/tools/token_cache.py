"""Whole splits, tokenised (`build_datasets`), with an on-disk cache so a second run with the same data and
settings starts at once.

One safetensors file per split (safetensors runs no code when loaded, unlike pickle), holding the
split's examples end to end:

    input_ids  (N_tokens,)   int32   every example's ids, one after another
    labels     (N_tokens,)   int32   the same layout, -100 where no loss is taken
    lengths    (N_examples,) int64   where one example ends and the next begins

The key is a hash of everything that changes the tokens: the tokenizer (class, name, vocabulary size and
the ids it gives a probe text), the layout settings, the caller's description of the source, and the
examples' own text, so an edited file or another subset never reuses a stale cache. The key names the
file and is stored in its metadata; a file whose metadata disagrees, or that cannot be read, is ignored
and rewritten. Writes are atomic (`minisumm.tools.atomic.write_file`), so a crash never leaves a
half-written file under the real name. Old files are never deleted: the folder can be emptied
at any time.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

import numpy as np

from tqdm.auto import tqdm

from minisumm import batching
from minisumm.config import DataConfig
from minisumm.data import SPLITS, Example, Splits, describe_source, load_splits
from minisumm.errors import WRITE_ERRORS
from minisumm.tools import atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = "2"  # bump when the file layout or the encoding rules change (2: special tokens split)
DEFAULT_DIR = "~/.cache/minisumm"
PROBE_TEXT = "Hello world! Naïve café, 東京, emoji 🙂.\nTL;DR: 1,024 tokens"


def cache_dir(configured: str | None) -> Path:
    return Path(configured or DEFAULT_DIR).expanduser() / "tokenized"


def tokenizer_fingerprint(tokenizer) -> str:
    """Changes when the tokenizer would give different ids: name, vocabulary, EOS, and a probe text."""
    probe = tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    return (f"{type(tokenizer).__name__}|{tokenizer.name_or_path}|{len(tokenizer)}|{tokenizer.eos_token_id}|"
            f"{_digest(repr(probe).encode())}")


def cache_key(settings: str, examples) -> str:
    """A hash of the settings text and every example's id, article and summary."""
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(f"v{FORMAT_VERSION}|{settings}".encode())
    for example in examples:
        for text in (example.id, example.article, example.summary):
            data = text.encode()
            hasher.update(len(data).to_bytes(8, "little"))  # length-prefixed: ("ab", "c") != ("a", "bc")
            hasher.update(data)
    return hasher.hexdigest()


def read(path: Path, key: str) -> list[dict] | None:
    """The cached examples, or None when the file is absent, unreadable or belongs to another key."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as stored:
            if (stored.metadata() or {}).get("key") != key:
                return None
            input_ids, labels, lengths = (stored.get_tensor(name) for name in ("input_ids", "labels", "lengths"))
    except Exception:  # a truncated or foreign file: tokenise again and overwrite it
        return None
    if int(lengths.sum()) != len(input_ids) or len(labels) != len(input_ids):
        return None
    input_ids, labels = input_ids.tolist(), labels.tolist()  # one conversion each, then cheap list slices
    ends = np.cumsum(lengths).tolist()
    return [{"input_ids": input_ids[end - n:end], "labels": labels[end - n:end]}
            for n, end in zip(lengths.tolist(), ends)]


def write(path: Path, key: str, examples: list[dict], description: str) -> None:
    """Store encoded examples atomically under `path`."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "input_ids": np.fromiter((t for e in examples for t in e["input_ids"]), dtype=np.int32),
        "labels": np.fromiter((t for e in examples for t in e["labels"]), dtype=np.int32),
        "lengths": np.array([len(e["input_ids"]) for e in examples], dtype=np.int64),
    }
    atomic.write_file(path, lambda tmp: save_file(arrays, str(tmp), metadata={"key": key, "format": FORMAT_VERSION,
                                                                          "source": description}))


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


# ---------------------------------------------------------------------------------------------- whole splits
class TokenizedSplit:
    """A split's encoded examples (a list of `{"input_ids", "labels"}`) and whether they came from the cache."""

    def __init__(self, examples: list[dict[str, list[int]]], from_cache: bool):
        self.examples = examples
        self.from_cache = from_cache
        self.lengths = [len(e["input_ids"]) for e in examples]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.examples[index]

    def __iter__(self):
        return iter(self.examples)


def tokenize_splits(splits: dict[str, list[Example]], tokenizer, data_cfg: DataConfig, prefix_tokens: int,
                    cache_key_extra: str = "", progress: bool = False) -> dict[str, TokenizedSplit]:
    """Encode every split, reading and writing the on-disk cache (`DataConfig.cache_dir`); with `progress`, a
    bar per split that is tokenised (off when stderr is not a terminal)."""
    settings = "|".join([tokenizer_fingerprint(tokenizer), f"max_length={data_cfg.max_length}",
                         f"max_summary_tokens={data_cfg.max_summary_tokens}", f"separator={data_cfg.separator!r}",
                         f"prefix_tokens={prefix_tokens}", f"chars_per_token_cap={batching.CHARS_PER_TOKEN_CAP}",
                         cache_key_extra])
    folder = cache_dir(data_cfg.cache_dir)
    tokenized = {}
    for split, examples in splits.items():
        key = cache_key(settings, examples)
        path = folder / f"{split}-{key}.safetensors"
        cached = read(path, key)
        if cached is not None and len(cached) == len(examples):
            log.info("%s: %d tokenised examples from the cache %s", split, len(cached), path)
            tokenized[split] = TokenizedSplit(cached, from_cache=True)
            continue
        with tqdm(total=len(examples), desc=f"tokenise {split}", leave=False, dynamic_ncols=True,
                  disable=None if progress else True) as bar:
            encoded = batching.encode_examples(tokenizer, examples, data_cfg, prefix_tokens, bar)
        try:
            write(path, key, encoded, cache_key_extra)
            log.info("%s: tokenised %d examples, cached in %s", split, len(encoded), path)
        except WRITE_ERRORS as error:  # the cache only saves time: a failed write is a warning
            print(f"warning: could not write the tokenised-data cache {path} ({error}); the next run will "
                  f"tokenise again. Pass --cache-dir with a writable folder to fix this.", file=sys.stderr)
        tokenized[split] = TokenizedSplit(encoded, from_cache=False)
    hint = splits.hint if isinstance(splits, Splits) else "it was not loaded"
    return Splits(tokenized, hint)


def build_datasets(data_cfg: DataConfig, tokenizer, prefix_tokens: int, seed: int,
                   splits: tuple[str, ...] = SPLITS, progress: bool = False
                   ) -> tuple[dict[str, list[Example]], dict[str, TokenizedSplit]]:
    """Load the splits and tokenise them (cached): `(raw_splits, tokenized_splits)`, same keys and order."""
    raw = load_splits(data_cfg, seed, splits)
    return raw, tokenize_splits(raw, tokenizer, data_cfg, prefix_tokens, describe_source(data_cfg, seed), progress)
