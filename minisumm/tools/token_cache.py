"""On-disk cache of tokenised splits, so a second run with the same data and settings starts at once.

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
from pathlib import Path

import numpy as np

from minisumm.tools import atomic

FORMAT_VERSION = "1"  # bump when the file layout or the encoding rules change
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
