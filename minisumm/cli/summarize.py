"""`python -m minisumm.cli.summarize RUN [FILE|-]`: summarise one text from a file or standard input.

The text is laid out exactly as in training (article, separator, then the model continues), decoded with
the same KV-cached decoder and the same decoding flags (`minisumm.config.DecodeConfig`) as evaluate.py, and
printed one sentence a line. At most MAX_INPUT_BYTES (10 MiB) are read, far more than the model sees (the
article is cut to `max_length` x 10 characters before tokenising); more is refused before the model loads,
so `- < /dev/zero` ends in one line instead of filling memory. A model can emit any byte, so control
characters in the summary (an escape sequence, a carriage return, a bell) are printed escaped (`\\x1b`),
never sent raw to the terminal.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from minisumm import methods
from minisumm.compiling import compile_blocks
from minisumm.cli.evaluate import decode_config
from minisumm.tools.console import library_bars
from minisumm.config import DecodeConfig, TrainConfig, add_arguments
from minisumm.tools.checkpoint import load_checkpoint
from minisumm.device import resolve_device, resolve_precision
from minisumm.errors import MinisummError, run_cli
from minisumm.tools.flags import FlagParser
from minisumm.tools.decoding import ready_to_decode, summarize
from minisumm.metrics import split_sentences

# What a terminal acts on instead of showing: C0 controls but tab and newline, DEL, C1 controls (0x9b is a
# one-character escape sequence) and the bidirectional overrides that reorder the text around them.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MAX_INPUT_BYTES = 10 * 2**20


def read_text(source: str) -> str:
    """The text to summarise, as UTF-8, checked before any model is loaded."""
    if source == "-":  # bytes: the terminal's encoding may not be UTF-8
        raw, name = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1), "Standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise MinisummError(f"{source} is not a file; give a text file to summarise, or - to read standard input.")
        with path.open("rb") as stream:
            raw, name = stream.read(MAX_INPUT_BYTES + 1), source
    if len(raw) > MAX_INPUT_BYTES:
        raise MinisummError(f"{name} holds more than {MAX_INPUT_BYTES // 2**20} MiB, the most summarize reads (the "
                            f"model sees only the article's first few thousand tokens); give the article alone.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MinisummError(f"{name} is not UTF-8 text (undecodable byte at offset {error.start}); give UTF-8 "
                            f"text.") from None
    if "\x00" in text:
        raise MinisummError(f"{name} holds NUL bytes, so it is binary data, not text; give UTF-8 text.")
    if not text.strip():
        raise MinisummError(f"{'Standard input' if source == '-' else source} is empty; there is nothing to summarise.")
    return text.strip()


def printable(text: str) -> str:
    """`text` with every control character but tab and newline written as an escape (`\\x1b`, `\\u202e`)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def parser(prog: str = "python -m minisumm.cli.summarize") -> argparse.ArgumentParser:
    p = FlagParser(prog=prog, description="Summarise one text, from a file or standard input, with a minisumm "
                                              "checkpoint.")
    p.add_argument("checkpoint", help="A run folder, or its best/ or last/ folder.")
    p.add_argument("source", nargs="?", default="-",
                   help="A UTF-8 text file, or - for standard input. (default: %(default)r)")
    add_arguments(p, DecodeConfig)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto. (default: %(default)r)")
    add_arguments(p, TrainConfig, only=("speedups", "compile"))
    return p


def main(argv=None, prog: str = "python -m minisumm.cli.summarize") -> int:
    args = parser(prog).parse_args(argv)
    decode = decode_config(args)
    text = read_text(args.source)
    device = resolve_device(args.device)
    library_bars(True)  # transformers' "Loading weights" bar on a terminal only
    model, tokenizer, config = load_checkpoint(args.checkpoint)
    model.to(device)
    ready_to_decode(model, resolve_precision("auto", device), args.speedups)  # as evaluate.py decodes
    if args.compile:
        compile_blocks(model)
    summary = summarize(model, tokenizer, [text], config.data, methods.prefix_tokens(config.method), decode)[0]
    print(printable("\n".join(split_sentences(summary))) or "(the model produced an empty summary)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
