"""`--tensorboard`: the scalars of metrics.jsonl, also as TensorBoard event files in `<run>/tensorboard/`.

metrics.jsonl stays the record of a run; this writes the same numbers where `tensorboard --logdir runs`
draws them, one tag per key of the record it came from:

    {"type": "train", "step": 40, "loss": 2.31, "lr": 2e-4, "grad_norm": 0.8, "tokens_per_s": 5100.0, ...}
        → train/loss, train/lr, train/grad_norm, train/tokens_per_s at step 40
    {"type": "eval", "step": 40, "val_loss": 2.45, "best_loss": 2.45, ...}
        → eval/val_loss, eval/best_loss at step 40

Other records (start, resume, interrupted) and other keys are not scalars to plot and are skipped. The
writer is torch's own `torch.utils.tensorboard.SummaryWriter`, which needs the `tensorboard` package:
`pip install 'minisumm[tensorboard]'`. `require()` says so in one sentence at start-up, before any work.
"""

from __future__ import annotations

from pathlib import Path

from minisumm.errors import MinisummError

FOLDER = "tensorboard"  # inside the run folder
SCALARS = {"train": ("loss", "lr", "grad_norm", "tokens_per_s"), "eval": ("val_loss", "best_loss")}


def require():
    """torch's SummaryWriter class, or one sentence saying how to install what it needs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MinisummError("--tensorboard needs the tensorboard package: pip install 'minisumm[tensorboard]' "
                            "(or leave out --tensorboard; metrics.jsonl holds the same numbers).") from None
    return SummaryWriter


class TensorBoardLog:
    """Writes each metrics.jsonl record's scalars to `<run>/tensorboard/`.

    `purge_step`: when resuming at step N, pass N, so that what the interrupted run logged after its last
    checkpoint (steps N and later, which the resumed run logs again) is hidden rather than drawn twice."""

    def __init__(self, run_folder: str | Path, purge_step: int | None = None):
        summary_writer = require()
        self.writer = summary_writer(log_dir=str(Path(run_folder) / FOLDER), purge_step=purge_step)

    def write(self, record: dict) -> None:
        """One record exactly as logged to metrics.jsonl; records without scalars to plot are skipped."""
        kind = record.get("type")
        for key in SCALARS.get(kind, ()):
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{kind}/{key}", value, global_step=record["step"])
        if kind == "eval":
            self.writer.flush()  # validations are rare: show each at once rather than within 2 minutes

    def close(self) -> None:
        self.writer.close()
