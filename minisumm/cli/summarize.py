"""`python -m minisumm.cli.summarize RUN [FILE|-]`: summarise one text from a file or standard input.

The text is laid out exactly as in training (article, separator, then the model continues), decoded with
the same KV-cached decoder as evaluate.py, and printed one sentence a line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from minisumm import methods
from minisumm.model import load_checkpoint
from minisumm.device import low_precision_dtype, resolve_device, resolve_precision
from minisumm.errors import ArgumentParser, MinisummError, run_cli
from minisumm.generate import summarize
from minisumm.metrics import split_sentences


def read_text(source: str) -> str:
    """The text to summarise, as UTF-8, checked before any model is loaded."""
    if source == "-":
        raw, name = sys.stdin.buffer.read(), "Standard input"  # bytes: the terminal's encoding may not be UTF-8
    else:
        path = Path(source)
        if not path.is_file():
            raise MinisummError(f"{source} is not a file; give a text file to summarise, or - to read standard input.")
        raw, name = path.read_bytes(), source
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


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m minisumm.cli.summarize", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="A run folder, or its best/ or last/ folder.")
    p.add_argument("source", nargs="?", default="-", help="A UTF-8 text file, or - for standard input.")
    p.add_argument("--max-new-tokens", type=int, default=128, help="Longest summary, in tokens.")
    p.add_argument("--beams", type=int, default=1, help="Beam width (1 = greedy).")
    p.add_argument("--no-repeat-ngram", type=int, default=3, help="Ban repeating n-grams of this size (0: off).")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto.")
    args = p.parse_args(argv)
    text = read_text(args.source)
    model, tokenizer, config = load_checkpoint(args.checkpoint)
    device = resolve_device(args.device)
    model.to(device)
    methods.merge(model)
    dtype = low_precision_dtype(resolve_precision("auto", device))  # bf16 or fp16 on a GPU, None on a CPU
    if dtype is not None:
        model.to(dtype)  # decode in the model's own dtype, without autocast (minisumm.generate's docstring)
    summary = summarize(model, tokenizer, [text], config.data, methods.prefix_tokens(config.method),
                        max_new_tokens=args.max_new_tokens, num_beams=args.beams,
                        no_repeat_ngram=args.no_repeat_ngram)[0]
    print("\n".join(split_sentences(summary)) or "(the model produced an empty summary)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
