"""The one exception type a user can cause.

Every mistake a user can make (a bad path, a missing field, an incompatible checkpoint, an invalid flag)
is raised as `MinisummError` with one sentence that says what was wrong and what to do. The CLIs print
that sentence and exit with status 2, never a traceback from deep inside a library.
"""


class MinisummError(Exception):
    """A problem with the user's input, explained in one sentence."""


def run_cli(main, argv=None) -> int:
    """Run a CLI's `main(argv)`, turning a MinisummError into its one sentence on stderr and exit status 2."""
    import sys

    try:
        return main(argv) or 0
    except MinisummError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
