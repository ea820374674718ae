"""Atomic writes, the one implementation every writer uses: a reader sees the old file (or folder) or the
whole new one, never half of either.

- `write_file(path, write)`: `write(temporary_path)` fills a temporary file in the target's folder (same file
  system, so the rename is atomic), which is flushed to disk and renamed over the target. `write_text` and
  `write_json` are the text forms; safetensors files (the token cache) and PNG plots use it directly.
- `staged_folder(folder)`: a temporary folder beside `folder` to fill; when the block ends it replaces
  `folder` (checkpoints, exports, the tiny-news build).
A failure on the way (a full disk, a kill) removes the temporary file or folder and leaves the target as it
was. `check_writable` refuses a read-only destination before any work is done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from minisumm.errors import MinisummError
from minisumm.tools import json_files


def umask() -> int:
    """The process's file-creation mask (0o022 on most systems), read without changing it for long."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_file(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temporary)` to fill a temporary file beside `path`, flush it to disk, rename it over `path`.

    The file gets the permissions any other tool's new file gets (0o666 less the umask: `-rw-r--r--` under
    the usual 022), not the owner-only 0o600 of `mkstemp`'s temporary file."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o666 & ~umask())  # after writing: a writer such as safetensors may replace the file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: dict) -> None:
    """Write strict JSON atomically, indented (NaN and ±inf as null: `json_files.dumps`)."""
    write_text(path, json_files.dumps(data, indent=2) + "\n")


@contextlib.contextmanager
def staged_folder(folder: Path):
    """Yield an empty temporary folder beside `folder` to fill; when the block ends, it replaces `folder`
    (`swap_in`). If the block fails, the temporary folder is removed and `folder` is as it was: whole or
    not at all. Used by checkpoints, exports and the tiny-news build."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        yield staging
        mask = umask()  # as mkdir and open would make them, not mkdtemp's (or safetensors') owner-only modes
        for path in [staging, *staging.rglob("*")]:
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
        swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def swap_in(staging: Path, folder: Path) -> None:
    """Move the finished `staging` folder to `folder`; the old `folder` stays readable (as `folder.old`)
    until the new one is in place."""
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        if old.exists():  # a previous swap died after moving `folder` aside and finished moving the new one in
            shutil.rmtree(old)
        os.rename(folder, old)
    os.rename(staging, folder)  # between these two renames only `folder.old` exists; readers fall back to it
    shutil.rmtree(old, ignore_errors=True)


def check_writable(path: Path, flag: str) -> None:
    """Refuse at once a place where nothing can be written: `path` if it exists, else its nearest parent."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MinisummError(f"{flag} {path} is a file; give a folder.")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise MinisummError(f"{flag} {path} cannot be written ({existing} is read-only or not a folder you can "
                            f"write); choose another {flag}.")
