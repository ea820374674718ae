"""What a training run prints: a start banner, one line per validation, and a short summary at the end.

Everything here is text for people; the same numbers go to `metrics.jsonl` and `summary.json` for programs.
The banner's parameter line echoes PEFT's `print_trainable_parameters`, the convention its users know:

    trainable params: 16,384 || all params: 1,137,408 || trainable%: 1.4405
"""

from __future__ import annotations


def library_bars(show: bool) -> None:
    """transformers' and datasets' own progress bars (loading weights, downloads) follow minisumm's: drawn on
    a terminal, never with --no-progress or into a file or pipe, where their carriage returns would flood a log."""
    import sys

    if show and sys.stderr.isatty():
        return
    import datasets
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()


def memory_words(device: str) -> str:
    """What `peak_memory_mb` measures on this device (`minisumm.device.peak_memory_mb`)."""
    if device.startswith("cuda"):
        return "CUDA tensors only: torch.cuda.max_memory_allocated"
    return "whole-process peak resident memory: Python, libraries, model and data"


def banner(*, method: str, model: str, data: str, trainable: int, total: int, device: str, precision: str,
           world_size: int, train_examples: int, validation_examples: int, padding: float, batch_size: int,
           grad_accum: int, steps_per_epoch: int, total_steps: int, epochs: int, warmup_steps: int,
           peak_lr: float, min_lr: float, eval_every: int, patience: int, out: str, resumed_at: int) -> str:
    processes = f" x {world_size} processes" if world_size > 1 else ""
    lines = [
        f"minisumm: {method} on {model}, data {data} | {device}, {precision}{processes}",
        f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}",
        f"examples: {train_examples:,} train, {validation_examples:,} validation | padding {padding:.1%} of "
        f"positions",
        f"batch {batch_size} x {grad_accum} accumulated x {world_size} = {batch_size * grad_accum * world_size} "
        f"examples per step | {steps_per_epoch} steps per epoch | up to {total_steps} steps ({epochs} epochs)",
        f"lr {peak_lr:.2g}: {warmup_steps} warmup steps, cosine to {min_lr:.2g} | validate every {eval_every} "
        f"steps, stop after {patience} without improvement",
        f"run folder {out}" + (f" (resumed at step {resumed_at})" if resumed_at else ""),
    ]
    return "\n".join(lines)


def eval_line(*, step: int, total_steps: int, epoch: float, train_loss: float | None, val_loss: float,
              best_loss: float, improved: bool, patience_left: int, tokens_per_s: float | None) -> str:
    train = f"train loss {train_loss:.4f}" if train_loss is not None else "train loss   -   "
    speed = f" | {tokens_per_s:,.0f} tokens/s" if tokens_per_s else ""
    mark = "new best" if improved else f"best {best_loss:.4f}, patience {patience_left} left"
    return (f"step {step:>{len(str(total_steps))}}/{total_steps} | epoch {epoch:5.2f} | {train} | "
            f"val loss {val_loss:.4f} ({mark}){speed}")


def summary_text(summary: dict, out: str) -> str:
    """The end of a run, for people: best loss, time, speed, memory, checkpoint, where things are."""
    stop = (f"stopped early at step {summary['steps']} of {summary['total_steps']}" if summary["stopped_early"]
            else f"ran all {summary['steps']} steps")
    kb = summary["checkpoint_bytes"] / 1024
    size = f"{kb / 1024:.1f} MB" if kb >= 1024 else f"{kb:.0f} KB"
    return "\n".join([
        f"best val loss {summary['best_val_loss']:.4f} at step {summary['best_step']} | {stop} "
        f"({summary['epochs']:.2f} epochs)",
        f"training {summary['train_time_s']:.1f} s (wall {summary['wall_time_s']:.1f} s) | "
        f"{summary['tokens_per_s']:,.0f} tokens/s | peak memory {summary['peak_memory_mb']:,.0f} MB "
        f"({memory_words(summary['device'])})",
        f"best checkpoint {out}/best ({size}, trainable weights only) | log {out}/metrics.jsonl | "
        f"all numbers {out}/summary.json",
        f"next: python evaluate.py {out}",
    ])


def start_banner(t) -> str:
    """The banner of a `minisumm.training.Training` about to start."""
    c, model = t.config, t.model
    return banner(
        method=c.method.method, model=c.model.model, data=c.data.data or c.data.train_file, trainable=sum(p.numel() for p in t.params),
        total=sum(p.numel() for p in model.parameters()), device=str(t.device), precision=t.precision,
        world_size=t.dist.world_size, train_examples=len(t.batches.train_set),
        validation_examples=len(t.batches.val_set), padding=t.batches.padding_fraction,
        batch_size=c.train.batch_size, grad_accum=c.train.grad_accum, steps_per_epoch=t.batches.steps_per_epoch,
        total_steps=t.total_steps, epochs=c.train.epochs, warmup_steps=t.warmup_steps, peak_lr=c.peak_lr(),
        min_lr=c.peak_lr() * c.train.min_lr_ratio, eval_every=t.eval_every, patience=c.train.patience,
        out=str(t.run.path), resumed_at=t.state.step)
