"""`python -m minisumm COMMAND [FLAGS]`: the same commands as the installed `minisumm` (minisumm.cli.main)."""

from minisumm.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m minisumm"))
