"""`python train.py --method {prompt,lora,last-layers,full}`: parse the flags, train, print the summary.

Every flag comes from a field of `minisumm.config` (one help text and one default per setting); an unknown
flag is one error line naming the flag it probably meant (`--max_steps` → `--max-steps`,
`--learning_rate` → `--lr`: `minisumm.tools.flags`). `--config FILE` reads any set of flags from a JSON or
YAML file, a run's own config.json included, and the command line overrides it
(`minisumm.tools.config_files`). Flags that do nothing with the chosen method or data source are warned
about.
`--resume RUN` continues RUN from its last/ checkpoint with the settings stored in RUN; the flags that only
steer the loop (`RESUME_FLAGS`: how long, how often to validate and log, where to run) may be given again
and are recorded in RUN's metrics.jsonl and config.json; a flag that would change the model, method, data
or optimisation is refused, naming it. The run folder is locked while this process writes it
(`minisumm.tools.folder_lock`), and Ctrl-C / SIGTERM end the command with one line (`minisumm.tools.interrupt`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path

from minisumm import config as cfg, distributed
from minisumm.tools import folder_lock, tensorboard
from minisumm.tools.atomic import check_writable
from minisumm.tools.config_files import chosen_settings, read_settings
from minisumm.errors import Interrupted, MinisummError, run_cli
from minisumm.tools.flags import FlagParser
from minisumm.tools.interrupt import raising

# Settings a resumed run may change: they decide how long the loop runs and where, not what it computes.
RESUME_FLAGS = ("epochs", "max_steps", "patience", "eval_every", "eval_batches", "log_every", "device",
                "precision", "grad_checkpointing", "cache_dir", "tensorboard", "speedups", "compile")
# Settings that only one method reads; giving them with another method is probably a mistake.
METHOD_FLAGS = {"prompt": ("prompt_length", "prompt_init", "prompt_init_text"),
                "prefix": ("prefix_length", "prefix_projection", "prompt_init", "prompt_init_text"),
                "lora": ("lora_rank", "lora_alpha", "lora_dropout", "lora_targets"),
                "last-layers": ("last_layers", "train_lm_head")}
# Settings that only some data sources read (see minisumm.data.source_kind).
HUB_FLAGS = ("data_config", "train_split", "validation_split", "test_split")
FIELD_FLAGS = ("article_field", "summary_field", "id_field")

EXAMPLES = """examples:
  python train.py --method lora --model tiny-news --data sample          offline, on the shipped sample
  python train.py --method lora --data EdinburghNLP/xsum --article-field document --summary-field summary
  python train.py --config runs/lora-20261128-101500 --lr 1e-3           that run again, one flag changed
"""


def parser(prog: str = "train.py") -> argparse.ArgumentParser:
    p = FlagParser(
        prog=prog, epilog=EXAMPLES,
        description="Fine-tune GPT-2 for summarisation by prompt tuning, LoRA, last-layers or full fine-tuning.")
    for section in (cfg.MethodConfig, cfg.ModelConfig, cfg.DataConfig, cfg.TrainConfig):
        cfg.add_arguments(p, section)
    run = p.add_argument_group("run")
    run.add_argument("--out", default=None, help="Run folder (default: runs/<method>-<timestamp>).")
    run.add_argument("--resume", default=None, metavar="RUN",
                     help=f"Continue RUN from its last/ checkpoint, with the settings stored in RUN; only "
                          f"{_flag_list()} and --no-progress may be given again.")
    run.add_argument("--overwrite", action="store_true",
                     help="Replace --out if it is a minisumm run folder (never the current folder, one above "
                          "it, or a folder holding the run's data or model).")
    run.add_argument("--no-progress", action="store_true", help="No progress bar (the log is still written).")
    run.add_argument("--config", default=None, metavar="FILE",
                     help="Read flags from a JSON or YAML file: flat ({\"method\": \"lora\", \"lr\": 3e-4}), in "
                          "sections as config.json, or a run's own config.json (or its folder); flags given here "
                          "override it.")
    return p


def parse(argv=None, prog: str = "train.py") -> argparse.Namespace:
    """The flags, with `--config FILE`'s settings in place of the defaults they set."""
    args = parser(prog).parse_args(argv)
    if args.config:
        if args.resume:
            raise MinisummError("--config and --resume exclude each other: a resumed run keeps its stored "
                                "settings; to repeat a run with changes, start a new one: --config RUN --out NEW.")
        with_file = parser(prog)
        with_file.set_defaults(**read_settings(args.config, with_file))
        args = with_file.parse_args(argv)
    return args


def _flag_list() -> str:
    return ", ".join("--" + name.replace("_", "-") for name in RESUME_FLAGS)


def given_flags(argv) -> dict:
    """The flags written on the command line (not defaults), by destination name."""
    explicit = parser()
    for action in explicit._actions:
        action.default = argparse.SUPPRESS
    return vars(explicit.parse_args(argv))


def resume_config(run: Path, given: dict) -> tuple[cfg.RunConfig, dict]:
    """RUN's stored settings with the loop-steering flags applied, and those flags; refuses the others."""
    from minisumm.tools.checkpoint import read_config

    refused = [name for name in given if name not in (*RESUME_FLAGS, "resume", "no_progress", "out")]
    if "out" in given and Path(given["out"]).resolve() != run.resolve():
        refused.insert(0, "out")
    if refused:
        flag = "--" + refused[0].replace("_", "-")
        raise MinisummError(f"{flag} cannot be changed when resuming {run}: it would change the model, method, "
                            f"data or optimisation the run was trained with; start a new run (another --out) "
                            f"instead. Resuming accepts only {_flag_list()}.")
    if not (run / "config.json").is_file():
        raise MinisummError(f"Cannot resume {run}: it is not a run folder (no config.json).")
    config = read_config(run)
    overrides = {name: given[name] for name in RESUME_FLAGS if name in given}
    for name, value in overrides.items():
        setattr(config.train if hasattr(config.train, name) else config.data, name, value)
    config.validate()
    if config.train.tensorboard:
        tensorboard.require()
    return config, overrides


def check_last(run: Path, config: cfg.RunConfig) -> None:
    """RUN's last/ trainer_state.json and RNG state, checked before the model and data load (what depends on
    them, the step against the schedule and AdamW's state, is checked when last/ is restored)."""
    from dataclasses import fields

    from minisumm.training import TrainState
    from minisumm.tools.run_folder import RunFolder

    folder = RunFolder(run, config, is_main=True, resume=True, overwrite=False)
    if folder.has_checkpoint():
        folder.read_state({f.name: str(f.type) for f in fields(TrainState)})


def warn_unused(config: cfg.RunConfig, given: dict, in_file: set[str] = frozenset(), file: str = "") -> None:
    """A warning for each flag given on the command line, or setting chosen in the --config `file` (its keys
    `in_file`), that the method or data source does not read."""
    from minisumm.data import source_kind

    def warn(name: str, why: str) -> None:
        if name in given:
            print(f"warning: --{name.replace('_', '-')} does nothing with {why}; it is ignored.", file=sys.stderr)
        elif name in in_file:
            print(f"warning: {name} in --config {file} does nothing with {why}; it is ignored.", file=sys.stderr)

    method, kind = config.method.method, source_kind(config.data)
    for name in dict.fromkeys(name for names in METHOD_FLAGS.values() for name in names):
        owners = [owner for owner, names in METHOD_FLAGS.items() if name in names]
        if method not in owners:
            warn(name, f"--method {method} (it sets {' and '.join(owners)})")
    unused = [(name, "it applies to hub datasets") for name in HUB_FLAGS if kind not in ("hub", "cnn_dailymail")]
    if kind in ("cnn_dailymail", "sample"):
        fields = ("article, highlights and id; for other fields of CNN/DailyMail use --data abisee/cnn_dailymail"
                  if kind == "cnn_dailymail" else "article, highlights and id")
        unused += [(name, f"its fields are {fields}") for name in FIELD_FLAGS]
    for name, why in unused:
        warn(name, f"--data {config.data.data} ({why})")


def main(argv=None, prog: str = "train.py") -> int:
    from minisumm.tools import training_run
    from minisumm.tools.console import summary_text

    args = parse(argv, prog)
    given = given_flags(argv)
    if args.resume:
        out = Path(args.resume)
        if args.overwrite:
            raise MinisummError("--overwrite and --resume exclude each other: resuming keeps the run's files.")
    else:
        config = cfg.from_args(args)
        config.validate()
        if config.train.tensorboard:
            tensorboard.require()  # before any work, not after the model and data have loaded
        warn_unused(config, given, chosen_settings(args.config) if args.config else set(), args.config)
        out = Path(args.out or f"runs/{config.method.method}-{time.strftime('%Y%m%d-%H%M%S')}")
        overrides = {}
    is_main = distributed.rank() == 0
    if is_main:
        check_writable(out, "--resume" if args.resume else "--out")  # before the lock beside it is made
    before = _stamp(out / "config.json")
    try:
        with raising(), folder_lock.hold(out) if is_main else contextlib.nullcontext():
            if args.resume:  # read under the lock: another process may be writing the run
                config, overrides = resume_config(out, given)
                check_last(out, config)
            run = training_run.start(config, out, resume=bool(args.resume), overwrite=args.overwrite,
                                     show_progress=not args.no_progress)
            if overrides:
                run.run.log({"type": "resume_overrides", "settings": overrides})
            summary = training_run.fit(run)
    except Interrupted as stop:
        raise Interrupted(stop.signum, stop_message(stop.signum, out, bool(args.resume), before)) from None
    if "interrupted" in summary:  # every process stopped together: each exits as interrupted
        if run.t.dist.is_main:
            print(summary["message"])
        return 130 if summary["interrupted"] == "SIGINT" else 143
    if not run.t.dist.is_main:
        return 0
    print(summary_text(summary, str(out)))  # summary.json holds every number
    return 0


def stop_message(signum: int, out: Path, resume: bool, before) -> str:
    """What an interrupt outside the loop's safe points left: nothing, or a folder --resume continues."""
    name = signal.Signals(signum).name
    if resume or _stamp(out / "config.json") not in (None, before):
        return f"Stopped by {name}; continue with: python train.py --resume {out}"
    return f"Stopped by {name} while loading the model and data; nothing was written."


def _stamp(path: Path):
    """A file's identity and modification time, to tell whether this process wrote it; None if absent."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
