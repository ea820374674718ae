"""Ctrl-C (SIGINT) and SIGTERM: stop where it is safe, in one line, never with a traceback.

Two ways to receive them:
- `raising()`, around set-up (loading the model and data): the signal raises `Interrupted` at once, as
  nothing has been written yet that a stop could spoil (the run folder is written only after set-up).
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


def _raise(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def _handlers(handler):
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def raising():
    """Within the block, SIGINT and SIGTERM raise `Interrupted` wherever the program is."""
    return _handlers(_raise)


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
