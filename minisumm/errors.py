"""The one exception type a user can cause, and how the CLIs end.

Every mistake a user can make (a bad path, a missing field, an incompatible checkpoint, an invalid flag)
is raised as `MinisummError` with one sentence that says what was wrong and what to do. The CLIs print
that sentence and exit with status 2, never a traceback from deep inside a library. A failed write (a full
disk, a read-only folder) becomes such a sentence through `writing(...)`; Ctrl-C and SIGTERM end a CLI with
one line and status 130 or 143 (`Interrupted`, raised by `minisumm.tools.interrupt`).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import reprlib
import signal
import sys

from safetensors import SafetensorError

# What a failed write raises: OSError from Python's own I/O, SafetensorError from safetensors' Rust writer.
WRITE_ERRORS = (OSError, SafetensorError)


class MinisummError(Exception):
    """A problem with the user's input, explained in one sentence."""


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) or SIGTERM, raised where the process stops; a BaseException, like KeyboardInterrupt,
    so that no `except Exception` swallows it. `message` says what was kept and how to go on."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message)
        self.signum, self.message = signum, message

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


@contextlib.contextmanager
def writing(what: str, kept: str = "nothing there was changed"):
    """Turn a failed write inside the block into one MinisummError: what could not be written, why, and
    `kept` (what survives, what to do next)."""
    try:
        yield
    except WRITE_ERRORS as error:
        reason = getattr(error, "strerror", None) or _io_message(str(error))
        raise MinisummError(f"Could not write {what} ({reason}); {kept}.") from None


def first_line(error: Exception) -> str:
    """The first line of an exception's message (libraries' messages can run to pages), at most 200 characters."""
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


_SHORT = reprlib.Repr()  # keyword arguments need Python 3.12
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxlong, _SHORT.maxother = 3, 4, 4, 60, 60, 60


def excerpt(value, limit: int = 80) -> str:
    """`repr(value)`, at most `limit` characters and never expanded in full: a message shows a bad value
    from a file without printing megabytes of it (a YAML alias bomb expands to billions of items)."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _io_message(text: str) -> str:
    """The OS's words inside a SafetensorError ("... message: \"No space left on device\" ...")."""
    found = re.search(r'message: "([^"]+)"', text)
    return found.group(1) if found else (text.strip().splitlines() or ["unknown error"])[-1][:160]


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag ends in one `error:` line and a pointer to --help, not the whole usage."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def run_cli(main, argv=None) -> int:
    """Run a CLI's `main(argv)`: a MinisummError becomes its sentence on stderr and exit status 2, an
    interrupt one line and 130 / 143."""
    try:
        return main(argv) or 0
    except MinisummError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(stop.message or f"Interrupted by {signal.Signals(stop.signum).name}.", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("Interrupted (Ctrl-C).", file=sys.stderr)
        return 130
