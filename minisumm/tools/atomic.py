"""Atomic file writes: a reader sees the old file or the whole new one, never half of either.

The text goes to a temporary file in the target's folder (same file system, so the rename is atomic),
is flushed to disk, and is renamed over the target. A failure on the way (a full disk) removes the
temporary file and leaves the target as it was. Checkpoint folders get the same treatment folder-wide in
`checkpoint.save_checkpoint`. `check_writable` refuses a read-only destination before any work is done.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from minisumm.errors import MinisummError


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (see `write_text`)."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically: a temporary file in the same folder, flushed to disk, then renamed over
    the target, so the target is either the old file or the whole new one."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: Path, flag: str) -> None:
    """Refuse at once a place where nothing can be written: `path` if it exists, else its nearest parent."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MinisummError(f"{flag} {path} is a file; give a folder.")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise MinisummError(f"{flag} {path} cannot be written ({existing} is read-only or not a folder you can "
                            f"write); choose another {flag}.")
