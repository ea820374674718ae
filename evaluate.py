"""Evaluate a checkpoint or a baseline: `python evaluate.py runs/<run>` (see --help)."""

from minisumm.errors import run_cli
from minisumm.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))
