"""Fine-tune GPT-2 for summarisation: `python train.py --method prompt` (see --help)."""

from minisumm.errors import run_cli
from minisumm.cli.train import main

if __name__ == "__main__":
    raise SystemExit(run_cli(main))
