"""The one exception type a user can cause.

Every mistake a user can make (a bad path, a missing field, an incompatible checkpoint, an invalid flag)
is raised as `MinisummError` with one sentence that says what was wrong and what to do. The CLIs print
that sentence and exit with status 2, never a traceback from deep inside a library.
"""


class MinisummError(Exception):
    """A problem with the user's input, explained in one sentence."""
