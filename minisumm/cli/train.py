"""`python train.py --method {prompt,lora,last-layers,full}`: parse the flags, train, print the summary.

Every flag comes from a field of `minisumm.config` (one help text and one default per setting).
`--resume RUN` continues RUN from its last/ checkpoint with the settings stored in RUN; the flags that only
steer the loop (`RESUME_FLAGS`: how long, how often to validate and log, where to run) may be given again
and are recorded in RUN's metrics.jsonl and config.json; a flag that would change the model, method, data
or optimisation is refused, naming it. The run folder is locked while this process writes it
(`minisumm.tools.folder_lock`), and Ctrl-C / SIGTERM end the command with one line (`minisumm.tools.interrupt`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from minisumm import config as cfg
from minisumm.tools import folder_lock
from minisumm.tools.atomic import check_writable
from minisumm.errors import ArgumentParser, Interrupted, MinisummError, run_cli
from minisumm.tools.interrupt import raising

# Settings a resumed run may change: they decide how long the loop runs and where, not what it computes.
RESUME_FLAGS = ("epochs", "max_steps", "patience", "eval_every", "eval_batches", "log_every", "device",
                "precision", "grad_checkpointing", "cache_dir")
# Settings that only one method reads; giving them with another method is probably a mistake.
METHOD_FLAGS = {"prompt": ("prompt_length", "prompt_init", "prompt_init_text"),
                "lora": ("lora_rank", "lora_alpha", "lora_dropout", "lora_targets"),
                "last-layers": ("last_layers", "train_lm_head")}


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="train.py",
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
    return p


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
    return config, overrides


def warn_unused(method: str, given: dict) -> None:
    for owner, names in METHOD_FLAGS.items():
        for name in names:
            if owner != method and name in given:
                print(f"warning: --{name.replace('_', '-')} does nothing with --method {method} (it sets "
                      f"{owner}); it is ignored.", file=sys.stderr)


def main(argv=None) -> int:
    from minisumm import training
    from minisumm.tools.console import summary_text

    args = parser().parse_args(argv)
    given = given_flags(argv)
    if args.resume:
        out = Path(args.resume)
        if args.overwrite:
            raise MinisummError("--overwrite and --resume exclude each other: resuming keeps the run's files.")
    else:
        config = cfg.from_args(args)
        config.validate()
        warn_unused(config.method.method, given)
        out = Path(args.out or f"runs/{config.method.method}-{time.strftime('%Y%m%d-%H%M%S')}")
        overrides = {}
    is_main = int(os.environ.get("RANK", "0")) == 0
    if is_main:
        check_writable(out, "--resume" if args.resume else "--out")  # before the lock beside it is made
    before = _stamp(out / "config.json")
    try:
        with raising(), folder_lock.hold(out) if is_main else contextlib.nullcontext():
            if args.resume:  # read under the lock: another process may be writing the run
                config, overrides = resume_config(out, given)
            run = training.setup(config, out, resume=bool(args.resume), overwrite=args.overwrite,
                                 show_progress=not args.no_progress)
            if overrides:
                run.run.log({"type": "resume_overrides", "settings": overrides})
            summary = training.fit(run)
    except Interrupted as stop:
        raise Interrupted(stop.signum, stop_message(stop.signum, out, bool(args.resume), before)) from None
    if not run.dist.is_main:
        return 0
    if "interrupted" in summary:
        print(summary["message"])
        return 130 if summary["interrupted"] == "SIGINT" else 143
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
