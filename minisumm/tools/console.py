"""What a training run prints: a start banner, one line per validation, and a short summary at the end.

Everything here is text for people; the same numbers go to `metrics.jsonl` and `summary.json` for programs.
The banner's parameter line echoes PEFT's `print_trainable_parameters`, the convention its users know:

    trainable params: 16,384 || all params: 1,137,408 || trainable%: 1.4405
"""

from __future__ import annotations

# What `minisumm.device.peak_memory_mb` measures, by the kind of device: in a few words, as an axis label,
# and as a footnote (compare's table).
PEAK_MEMORY_MEANS = {
    "cpu": ("whole-process peak resident memory: Python, libraries, model and data", "process resident set",
            "on the CPU, the process's peak resident set since training began: the whole process (Python, "
            "libraries, model, data), so a tiny model still shows hundreds of MB (Linux's VmHWM, reset through "
            "/proc/self/clear_refs; elsewhere the peak since the process started)"),
    "cuda": ("CUDA tensors only: torch.cuda.max_memory_allocated", "CUDA tensors",
             "on CUDA, torch.cuda.max_memory_allocated since training began: the tensors only, without the CUDA "
             "context and the allocator's cache"),
}


def memory_kind(device) -> str:
    """"cuda" or "cpu": the key of PEAK_MEMORY_MEANS for a device (as summary.json writes it)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


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
    """What `minisumm.device.peak_memory_mb` measures on this device, in a few words."""
    return PEAK_MEMORY_MEANS[memory_kind(device)][0]


def eval_line(*, step: int, total_steps: int, epoch: float, train_loss: float | None, val_loss: float,
              best_loss: float, improved: bool, patience_left: int, tokens_per_s: float | None,
              mfu: float | None = None) -> str:
    train = f"train loss {train_loss:.4f}" if train_loss is not None else "train loss   -   "
    speed = f" | {tokens_per_s:,.0f} tokens/s" if tokens_per_s else ""
    speed += f" | MFU {mfu:.1%}" if mfu is not None else ""
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
        f"{summary['tokens_per_s']:,.0f} tokens/s{mfu_words(summary)} | peak memory {summary['peak_memory_mb']:,.0f} MB "
        f"({memory_words(summary['device'])})",
        f"best checkpoint {out}/best ({size}, trainable weights only) | log {out}/metrics.jsonl | "
        f"all numbers {out}/summary.json",
        f"next: python evaluate.py {out}",
    ])


def mfu_words(summary: dict) -> str:
    """" (MFU 38.2% of an NVIDIA H200's 989 bf16 TFLOPS)", or nothing where summary.json has no MFU."""
    if "mfu" not in summary:
        return ""
    kind = "TF32" if summary["precision"] == "fp32" else summary["precision"]
    return f" (MFU {summary['mfu']:.1%} of {summary['gpu']}'s {summary['peak_tflops']:,.0f} {kind} TFLOPS)"


def start_banner(t, run_path) -> str:
    """The banner of a `minisumm.training.Training` about to start in `run_path`: what trains on what, and how."""
    c, b, world = t.config, t.batches, t.dist.world_size
    trainable, total = sum(p.numel() for p in t.params), sum(p.numel() for p in t.model.parameters())
    processes = f" x {world} processes" if world > 1 else ""
    lines = [
        f"minisumm: {c.method.method} on {c.model.model}, data {c.data.data or c.data.train_file} | {t.device}, "
        f"{t.precision}{processes}",
        f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}",
        f"examples: {len(b.train_set):,} train, {len(b.val_set):,} validation | padding {b.padding_fraction:.1%} "
        f"of positions",
        f"batch {c.train.batch_size} x {c.train.grad_accum} accumulated x {world} = "
        f"{c.train.batch_size * c.train.grad_accum * world} examples per step | {b.steps_per_epoch} steps per "
        f"epoch | up to {t.total_steps} steps ({c.max_epochs()} epochs)",
        f"lr {c.peak_lr():.2g}: {t.warmup_steps} warmup steps, cosine to {c.peak_lr() * c.train.min_lr_ratio:.2g} "
        f"| validate every {t.eval_every} steps, stop after {c.train.patience} without improvement",
        f"run folder {run_path}" + (f" (resumed at step {t.state.step})" if t.state.step else ""),
    ]
    return "\n".join(lines)
