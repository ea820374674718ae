"""Train and evaluate every method and both baselines with one command, then write the comparison report.

    python benchmarks/run_all.py --model tiny-news --data sample       # the comparison in miniature, offline
    python benchmarks/run_all.py --model tiny-random --data sample     # quick preset: ~3 min on 2 CPU cores
    python benchmarks/run_all.py --model gpt2 --train-args "--epochs 3 --batch-size 4" --eval-args "--beams 4"

Each step is its own process (`train.py`, `evaluate.py`, as a user would type them), so the runs share
nothing but the disk, and the first failure stops everything with a message naming the step. Layout:

    <out>/prompt/  <out>/prefix/  <out>/lora/  <out>/last-layers/  <out>/full/   train.py run folders, with eval/
    <out>/baseline-lead3/eval/  <out>/baseline-zero-shot/eval/     evaluate.py --baseline
    <out>/test.jsonl                                               the test examples every row is scored on
    <out>/commands.sh                                              every command run, in order
    <out>/comparison.md, .csv (+ PNGs with matplotlib)             python -m minisumm.tools.compare

Same test examples for every row: the runs' test split (from the train flags: data, sizes, seed) is
written once to test.jsonl and every evaluation, baselines included, scores that file. evaluate.py's
baselines cannot take the train flags (--test-size, --seed), so without the file they could score other
examples than the runs.

The quick preset (`--quick`, on by default for `--model tiny-random`) makes all five methods and both
baselines take minutes on 2 CPU cores: 160 / 40 / 40 examples, 256 tokens per example (the tiny model's
tokenizer is byte-level, so that is ~250 characters: summaries capped at 128, the article's start), 3
epochs of batch 8 without accumulation (20 optimizer steps an epoch rather than 5), and decoding the 40
test articles up to 64 new tokens. `--train-args` and `--eval-args` come after the preset on the
command line, so they win. A value that is one flag alone needs the `=` form,
`--train-args="--no-group-by-length"`: argparse takes a lone "--flag" for an option of its own ("--epochs 2",
with a space, is fine).

tiny-random learning rates (`TINY_RANDOM_LR`): the tiny model is random, not pretrained, so it must learn
the byte statistics of the text from scratch in 60 steps. The defaults of `config.DEFAULT_LR` are meant for
adapting a pretrained GPT-2 and move it far less in that time. Validation loss after the quick preset,
from 6.84 at step 0 (measured on 2 CPU cores):

    method        default rate → loss     TINY_RANDOM_LR → loss
    prompt        3e-2         → 5.61     3e-1           → 5.19
    lora          2e-4         → 6.78     3e-3           → 4.96
    last-layers   1e-4         → 5.63     2e-3           → 3.92
    full          5e-5         → 6.05     1e-3           → 3.39

The raised rates are 10 to 20 times the defaults, in the same order (a soft prompt needs the largest rate,
full fine-tuning the smallest); they apply to tiny-random only, and `--train-args "--lr X"` overrides them.

tiny-news (`minisumm.tiny_news.pretrain`) needs no preset: train.py's defaults (the whole sample, batch 8 x 4, up to
10 epochs with early stopping) take about a minute per method on 2 CPU cores, and its learning rates are
train.py's own `config.TINY_NEWS_LR`, chosen on the validation split.

Left as evaluate.py makes them: the baselines' own data settings (`--max-length` 1024 or the model's
positions if fewer, `--max-summary-tokens` 128), which only the zero-shot baseline uses (truncation of its
loss and prompt).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout: find minisumm without installing it

from minisumm import data  # noqa: E402
from minisumm.metrics import BASELINES  # noqa: E402
from minisumm.tools import compare  # noqa: E402
from minisumm.config import METHODS, RunConfig, from_args  # noqa: E402
from minisumm.errors import MinisummError, run_cli  # noqa: E402
from minisumm.cli.evaluate import parser as evaluate_parser  # noqa: E402
from minisumm.cli.train import parser as train_parser  # noqa: E402
from minisumm.tools.flags import FlagParser  # noqa: E402

QUICK_TRAIN = ["--train-size", "160", "--validation-size", "40", "--test-size", "40", "--max-length", "256",
               "--max-summary-tokens", "128", "--epochs", "3", "--batch-size", "8", "--grad-accum", "1",
               "--warmup-ratio", "0.1", "--log-every", "5"]
QUICK_EVAL = ["--limit", "40", "--max-new-tokens", "64"]
TINY_RANDOM_LR = {"prompt": 3e-1, "prefix": 5e-2, "lora": 3e-3, "last-layers": 2e-3, "full": 1e-3}


def parser() -> argparse.ArgumentParser:
    # Each help states its default once, by hand: ArgumentDefaultsHelpFormatter would add "(default: None)"
    # to the flags whose default is worked out later (--out, --quick).
    p = FlagParser(prog="run_all.py", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="gpt2", help="Base model of every run, as for train.py --model (default: gpt2).")
    p.add_argument("--random-init", action="store_true", help="Random weights, as for train.py --random-init.")
    p.add_argument("--data", default="cnn_dailymail",
                   help="Data source, as for train.py --data (default: cnn_dailymail).")
    p.add_argument("--out", default=None, help="Folder for all runs and the report "
                                               "(default: runs/compare-<timestamp>).")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"Comma-separated methods to train (default: {','.join(METHODS)}).")
    p.add_argument("--baselines", default=",".join(BASELINES),
                   help=f"Comma-separated baselines, '' for none (default: {','.join(BASELINES)}).")
    quick = p.add_argument("--quick", action=argparse.BooleanOptionalAction, default=None)
    quick.help = "Small, fast settings, see the module docstring (default: on for --model tiny-random, else off)."
    p.add_argument("--train-args", default="", help='Extra train.py flags for every run, e.g. "--epochs 2"; one '
                                                    'flag alone needs the = form: --train-args="--no-group-by-length" '
                                                    '(default: none).')
    p.add_argument("--eval-args", default="",
                   help='Extra evaluate.py flags for every evaluation, e.g. "--beams 4" (default: none).')
    p.add_argument("--skip-done", action="store_true",
                   help="Keep runs and evaluations already finished in --out (to continue after a failure).")
    return p


def _choices(text: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in allowed]
    if unknown:
        raise MinisummError(f"{flag} has unknown names {unknown}; choose from {', '.join(allowed)}.")
    return chosen


def _split(text: str, flag: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as error:
        raise MinisummError(f"{flag} {text!r} cannot be split into flags ({error}); check its quotes.") from None


def train_flags(args, method: str, extra: list[str]) -> list[str]:
    """train.py's flags for one method: model and data, the preset, the per-method rate, then the user's."""
    flags = ["--method", method, "--model", args.model, "--data", args.data]
    flags += ["--random-init"] if args.random_init else []
    flags += QUICK_TRAIN if args.quick else []
    flags += ["--lr", str(TINY_RANDOM_LR[method])] if args.model == "tiny-random" else []
    return flags + extra


def _check_flags(argv: list[str], make_parser, flag: str):
    """Parse the flags as the CLI will, before hours of training find a typo in them."""
    try:
        return make_parser().parse_args(argv)
    except SystemExit:  # argparse has printed the problem
        raise MinisummError(f"{flag} holds flags the script does not accept (see the message above).") from None


def write_test_file(config: RunConfig, path: Path) -> int:
    """The runs' test split as a .jsonl file (under both the configured and the default field names, so
    that runs and baselines read it alike); returns its number of examples."""
    examples = data.load_splits(config.data, config.train.seed, splits=("test",))["test"]
    fields = {config.data.article_field: "article", config.data.summary_field: "summary", config.data.id_field: "id"}
    rows = []
    for example in examples:
        row = {"id": example.id, "article": example.article, "highlights": example.summary}
        row.update({name: getattr(example, attribute) for name, attribute in fields.items()})
        if example.facts is not None:  # a generated story's facts: evaluate.py scores fact recall with them
            row["facts"] = example.facts
        rows.append(json.dumps(row) + "\n")
    path.write_text("".join(rows))
    return len(rows)


class Steps:
    """Runs the commands one after another, logging each to commands.sh; the first failure stops all."""

    def __init__(self, out: Path, resume_hint: str):
        self.log, self.resume_hint = out / "commands.sh", resume_hint
        if not self.log.exists():
            self.log.write_text("#!/bin/sh\n# Commands run by benchmarks/run_all.py, in order.\n")

    def run(self, what: str, argv: list[str]) -> None:
        print(f"\n=== {what}: {shlex.join(argv)}", flush=True)
        with open(self.log, "a") as log:
            log.write(shlex.join(argv) + "\n")
        started = time.perf_counter()
        code = subprocess.run(argv).returncode
        if code != 0:
            raise MinisummError(f"{what} failed (exit status {code}; its messages are above); the steps "
                                f"that finished are kept: fix the problem, then {self.resume_hint}.")
        print(f"=== {what}: done in {compare.format_seconds(time.perf_counter() - started)}", flush=True)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    methods = _choices(args.methods, METHODS, "--methods")
    baselines = _choices(args.baselines, BASELINES, "--baselines")
    if not methods and not baselines:
        raise MinisummError("Nothing to run: give at least one of --methods and --baselines.")
    args.quick = args.model == "tiny-random" if args.quick is None else args.quick
    train_extra, eval_extra = _split(args.train_args, "--train-args"), _split(args.eval_args, "--eval-args")
    eval_extra = (QUICK_EVAL if args.quick else []) + eval_extra
    out = Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    configs = [from_args(_check_flags(train_flags(args, m, train_extra), train_parser, "--train-args"))
               for m in methods or ["full"]]  # baselines alone still need the data flags for the test file
    for config in configs:
        config.validate()
    _check_flags(["--baseline", "lead3", *eval_extra], evaluate_parser, "--eval-args")
    if out.exists() and any(out.iterdir()) and not args.skip_done:
        raise MinisummError(f"{out} is not empty; pass --skip-done to continue the runs in it, or another --out.")
    out.mkdir(parents=True, exist_ok=True)

    steps = Steps(out, f"rerun the same command with --out {out} --skip-done")
    test_file = out / "test.jsonl"
    if not (args.skip_done and test_file.is_file()):
        count = write_test_file(configs[0], test_file)
        print(f"Wrote {count} test examples to {test_file}")
    started = time.perf_counter()
    train, evaluate = [sys.executable, str(ROOT / "train.py")], [sys.executable, str(ROOT / "evaluate.py")]
    try:
        for method in methods:
            run = out / method
            if not (args.skip_done and (run / "summary.json").is_file()):
                overwrite = ["--overwrite"] if run.exists() else []  # only with --skip-done: a failed run
                steps.run(f"train {method}", [*train, *train_flags(args, method, train_extra), "--out", str(run),
                                              "--no-progress", *overwrite])
            if not (args.skip_done and (run / "eval" / "metrics.json").is_file()):
                steps.run(f"evaluate {method}", [*evaluate, str(run), "--data", str(test_file), *eval_extra])
        for baseline in baselines:
            folder = out / f"baseline-{baseline}"
            if args.skip_done and (folder / "eval" / "metrics.json").is_file():
                continue
            model = ["--model", args.model] + (["--random-init"] if args.random_init else [])
            model = model if baseline == "zero-shot" else []  # lead-3 needs no model
            steps.run(f"baseline {baseline}", [*evaluate, "--baseline", baseline, *model, "--data", str(test_file),
                                               "--out", str(folder / "eval"), *eval_extra])
    except KeyboardInterrupt:
        raise MinisummError(f"Interrupted; the steps that finished are kept: {steps.resume_hint}.") from None
    print(f"\nAll steps done in {compare.format_seconds(time.perf_counter() - started)}.\n")
    folders = [out / m for m in methods] + [out / f"baseline-{b}" for b in baselines]
    return compare.main([*map(str, folders), "--out", str(out / "comparison.md")])


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
