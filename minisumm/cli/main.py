"""`minisumm COMMAND [FLAGS]`: every minisumm command line behind one name (also `python -m minisumm`).

    minisumm train --method lora ...        is   python train.py --method lora ...
    minisumm evaluate runs/<run>            is   python evaluate.py runs/<run>
    minisumm summarize runs/<run> FILE      is   python -m minisumm.cli.summarize runs/<run> FILE
    minisumm compare runs/*                 is   python -m minisumm.tools.compare runs/*
    minisumm export runs/<run> --to hf DIR  is   python -m minisumm.tools.export runs/<run> --to hf DIR
    minisumm pretrain --out DIR             is   python -m minisumm.tiny_news.pretrain --out DIR

A command is its module's own `main(argv)`, so flags, help, errors and exit statuses are exactly those of
the script; this file only picks the module. Modules are imported when their command runs, not before.
"""

from __future__ import annotations

import difflib
import importlib
import sys

from minisumm import __version__
from minisumm.errors import run_cli

# command: (module whose main(argv) runs it, one line for `minisumm --help`)
COMMANDS = {
    "train": ("minisumm.cli.train", "Fine-tune GPT-2 by prompt tuning, LoRA, last-layers or full fine-tuning."),
    "evaluate": ("minisumm.cli.evaluate", "Evaluation loss and ROUGE of a checkpoint, or of a baseline."),
    "summarize": ("minisumm.cli.summarize", "Summarise one text from a file or standard input."),
    "compare": ("minisumm.tools.compare", "One Markdown table (and plots) comparing runs and baselines."),
    "export": ("minisumm.tools.export", "Export a run as a transformers model folder or a PEFT adapter."),
    "pretrain": ("minisumm.tiny_news.pretrain", "Pretrain tiny-news, the small GPT-2 of the offline quickstart."),
}


def usage(prog: str) -> str:
    width = max(len("-h, --help"), *map(len, COMMANDS))
    lines = [f"usage: {prog} COMMAND [FLAGS]   ({prog} COMMAND --help for a command's flags)", "",
             "Prompt tuning, LoRA and last-layer fine-tuning of GPT-2 for summarisation.", "", "commands:"]
    lines += [f"  {name:<{width}}  {line}" for name, (_, line) in COMMANDS.items()]
    lines += ["", "options:", f"  {'-h, --help':<{width}}  show this help and exit",
              f"  {'--version':<{width}}  show minisumm's version and exit"]
    return "\n".join(lines)


def main(argv=None, prog: str = "minisumm") -> int:
    """Run `argv[0]`'s command with the rest of `argv`; return its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(usage(prog), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(usage(prog))
        return 0
    if argv[0] == "--version":
        print(f"minisumm {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(COMMANDS)}."
        print(f"error: unknown command '{command}'; {hint} (see {prog} --help)", file=sys.stderr)
        return 2
    tool_main = importlib.import_module(COMMANDS[command][0]).main
    # each main names itself "minisumm train" (...) in its usage line and errors
    return run_cli(lambda args: tool_main(args, prog=f"{prog} {command}"), rest)


if __name__ == "__main__":
    raise SystemExit(main())
