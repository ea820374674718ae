"""One writer per folder: the lock that train.py, evaluate.py and export hold on the folder they write.

    with folder_lock.hold(Path("runs/lora")):    # takes runs/.lora.lock, or stops with one sentence
        ...                                      # write runs/lora freely

The lock is a file beside the folder (`<parent>/.<name>.lock`, so it exists before the folder does and
survives `--overwrite` replacing it) holding the writer's pid, named after the folder's real path (symbolic
links resolved: a link to a run and the run itself are one folder with one lock), with an exclusive `flock` on it. The kernel
drops a `flock` when its process ends, however it ends, so a lock whose file is there but unlocked was
left by a process that was killed: it is taken over, with a note naming that process. A second writer
while the first is alive gets a MinisummError naming the first one's pid. Linux and macOS only (fcntl).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from pathlib import Path

from minisumm.errors import WRITE_ERRORS, MinisummError


def lock_path(folder: Path) -> Path:
    real = Path(folder).resolve()
    if real == real.parent:
        raise MinisummError(f"{folder} is the root of the file system, where minisumm writes nothing; give a "
                            f"folder of its own.")
    return real.with_name(f".{real.name}.lock")


@contextlib.contextmanager
def hold(folder: Path, what: str = "run folder"):
    """Hold the lock of `folder` (its parent must be writable) for the block; remove it afterwards, and the
    folders made to hold it if they are still empty (a run that failed to start leaves no `runs/` behind)."""
    path = lock_path(folder)
    made = [parent for parent in path.parents if not parent.exists()]  # deepest first
    handle = _acquire(path, what, Path(folder))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)  # unlink before unlocking: a waiting writer then makes a fresh file
        os.close(handle)
        for parent in made:
            try:
                parent.rmdir()  # only if empty: never anything a run wrote
            except OSError:
                break


def _acquire(path: Path, what: str, folder: Path) -> int:
    for _ in range(10):  # only loops when another writer removed the file between our open and our flock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except WRITE_ERRORS as error:
            raise MinisummError(f"Could not create the lock {path} for {folder} ({error.strerror or error}); "
                                f"the {what} must be in a folder you can write.") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(handle) or "pid not yet written"
            os.close(handle)
            raise MinisummError(f"{folder} is being written by another process ({holder}); wait for it to "
                                f"finish, or stop it, or choose another folder.") from None
        if _same_file(handle, path):
            previous = _read(handle)
            if previous:
                print(f"note: taking over the lock {path}, left by {previous}, which is no longer running.",
                      file=sys.stderr)
            try:
                os.ftruncate(handle, 0)
                os.pwrite(handle, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
            except WRITE_ERRORS as error:
                path.unlink(missing_ok=True)
                os.close(handle)
                raise MinisummError(f"Could not write the lock {path} for {folder} ({error.strerror or error}); "
                                    f"nothing was changed there.") from None
            return handle
        os.close(handle)
    raise MinisummError(f"Could not take the lock {path}: other processes keep replacing it; try again.")


def _read(handle: int) -> str:
    return os.pread(handle, 200, 0).decode(errors="replace").strip()


def _same_file(handle: int, path: Path) -> bool:
    """Is the file we locked still the one at `path` (not unlinked by its previous holder meanwhile)?"""
    try:
        return os.fstat(handle).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
