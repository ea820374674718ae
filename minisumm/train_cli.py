"""`python train.py --method {prompt,lora,last-layers,full}`: parse the flags, train, print the summary.

Every flag comes from a field of `minisumm.config` (one help text and one default per setting).
`--resume RUN` continues RUN from its last/ checkpoint with the settings stored in the run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from minisumm import config as cfg
from minisumm.errors import MinisummError, run_cli


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Fine-tune GPT-2 for summarisation by prompt tuning, LoRA, last-layers or full fine-tuning.")
    for section in (cfg.MethodConfig, cfg.ModelConfig, cfg.DataConfig, cfg.TrainConfig):
        cfg.add_arguments(p, section)
    run = p.add_argument_group("run")
    run.add_argument("--out", default=None, help="Run folder (default: runs/<method>-<timestamp>).")
    run.add_argument("--resume", default=None, metavar="RUN",
                     help="Continue RUN from its last/ checkpoint, with the settings stored in RUN.")
    run.add_argument("--overwrite", action="store_true", help="Replace a non-empty --out folder.")
    run.add_argument("--no-progress", action="store_true", help="No progress bar (the log is still written).")
    return p


def main(argv=None) -> int:
    from minisumm.checkpoint import read_config
    from minisumm.trainer import Trainer

    args = parser().parse_args(argv)
    if args.resume:
        out = Path(args.resume)
        if not (out / "config.json").is_file():
            raise MinisummError(f"Cannot resume {out}: it is not a run folder (no config.json).")
        config = read_config(out)
    else:
        config = cfg.from_args(args)
        config.validate()
        out = Path(args.out or f"runs/{config.method.method}-{time.strftime('%Y%m%d-%H%M%S')}")
    trainer = Trainer(config, out, resume=bool(args.resume), overwrite=args.overwrite,
                      show_progress=not args.no_progress)
    summary = trainer.train()
    if not trainer.dist.is_main:
        return 0
    if "interrupted" in summary:
        print(summary["message"])
        return 130 if summary["interrupted"] == "SIGINT" else 143
    print(json.dumps(summary, indent=2))
    print(f"Run saved in {out}; evaluate it with: python evaluate.py {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
