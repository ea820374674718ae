"""Ctrl-C (SIGINT) and SIGTERM: stop where it is safe, in one line, never with a traceback.

Two ways to receive them:
- `raising()`, around set-up (loading the model and data): the signal raises `Interrupted` at once, as
  nothing has been written yet that a stop could spoil (the run folder is written only after set-up).
  Raised inside a library, it can meet a bare `except:` (multiprocess, imported by datasets, has one
  around an import) that swallows it or turns it into another error; the block remembers the signal and
  ends in `Interrupted` all the same.
- `Interrupt()`, around work that must not be cut in half (a training step, a validation and its
  checkpoint): the first signal only sets `interrupt.signal`, which the loop checks between steps; a
  second one raises `Interrupted` at once. Checkpoints are written whole or not at all, so even that
  leaves the last saved one readable.
Both restore the handlers they found.
"""

from __future__ import annotations

import contextlib
import signal

from minisumm.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _handlers(handler):
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


_received: list[int] = []  # the signals that the open `raising()` block has turned into `Interrupted`


@contextlib.contextmanager
def raising():
    """Within the block, SIGINT and SIGTERM raise `Interrupted` wherever the program is; the block ends in
    `Interrupted` even where code inside caught it (and went on, or raised something else instead)."""

    def handle(signum, frame):
        _received.append(signum)
        raise Interrupted(signum)

    _received.clear()
    try:
        with _handlers(handle):
            try:
                yield
            except Interrupted:
                raise
            except BaseException:
                if _received:
                    raise Interrupted(_received[0]) from None
                raise
            raise_pending()
    finally:
        _received.clear()


def raise_pending() -> None:
    """`Interrupted` now if a signal came inside the open `raising()` block and code there caught it; called
    just before set-up writes its first file, so that a stop swallowed by a library still writes nothing."""
    if _received:
        raise Interrupted(_received[0])


class Interrupt:
    """Turns the first Ctrl-C / SIGTERM into a flag checked between steps; a second one stops at once."""

    def __init__(self):
        self.signal = None
        self._handlers = None

    def __enter__(self):
        self._handlers = _handlers(self._handle)
        self._handlers.__enter__()
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise Interrupted(signum)
        self.signal = signum

    def __exit__(self, *exc):
        self._handlers.__exit__(*exc)
