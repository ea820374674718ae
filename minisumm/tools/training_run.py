"""One training run as train.py runs it: the lesson's loop (`minisumm.training`) with everything around it.

    train(config, out)  = fit(start(config, out))
      start(...)        the run folder checked (`RunFolder`), the lesson's `setup` with the commands' model
                        loading and the token cache, last/ restored when resuming, the folder written
      fit(r)            runs `minisumm.training.fit` and records each of its events: metrics.jsonl, the console
                        line of a validation, best/ at a new best, last/ after every validation, the progress
                        bars; then summary.json

Ctrl-C and SIGTERM (`minisumm.tools.interrupt.Interrupt`) stop the run at the first event after which no
validation is due, under torchrun every process when any received it (`minisumm.distributed.agreed_signal`):
last/ is saved and the run can be resumed (`minisumm.tools.resume`). CUDA running out of memory is one
sentence naming smaller batches. On a GPU of `minisumm.mfu`'s table, validation lines and the summary show MFU.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from minisumm import distributed, methods, mfu, training
from minisumm.config import RunConfig
from minisumm.device import peak_memory_mb, reset_peak_memory
from minisumm.errors import MinisummError
from minisumm.tools import console, loading
from minisumm.tools.checkpoint import folder_size
from minisumm.tools.interrupt import Interrupt, raise_pending
from minisumm.tools.resume import restore, save_last
from minisumm.tools.run_folder import RunFolder
from minisumm.tools.token_cache import build_datasets


@dataclass
class TrainingRun:
    """The lesson's `Training` and what train.py keeps around it."""
    t: training.Training
    run: RunFolder
    show_progress: bool  # progress bars, on the main process and a terminal only
    recent_losses: list[float] = field(default_factory=list)  # training losses since the last validation
    bar: tqdm | None = None  # the training bar, from the first step on
    peak_flops: float | None = None  # one GPU's peak in the run's precision (`minisumm.mfu`); None: no MFU shown
    flops_per_token: float = 0.0  # model FLOPs per trained token (`minisumm.mfu`), counted when MFU is shown


def train(config: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          show_progress: bool = True) -> dict:
    """Train one run into the folder `out`; returns the summary (also written to summary.json)."""
    return fit(start(config, out, resume=resume, overwrite=overwrite, show_progress=show_progress))


def start(config: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          show_progress: bool = True) -> TrainingRun:
    """The run folder checked, then `minisumm.training.setup`, then last/ restored when resuming.

    The run folder is checked first and written last (`RunFolder.create`), so a run that fails to start
    leaves nothing behind."""
    config.validate()
    is_main = distributed.rank() == 0
    run = RunFolder(Path(out), config, is_main=is_main, resume=resume, overwrite=overwrite)
    console.library_bars(show_progress and is_main)

    def encode(config: RunConfig, tokenizer):
        with distributed.main_process_first():  # under torchrun rank 0 fills the cache that the others read
            _, splits = build_datasets(config.data, tokenizer, methods.prefix_tokens(config.method),
                                       config.train.seed, splits=("train", "validation"),
                                       progress=show_progress and is_main)
        return splits

    t = training.setup(config, load=loading.load, encode=encode)
    run.config = t.config
    r = TrainingRun(t, run, show_progress=show_progress and t.dist.is_main,
                    peak_flops=mfu.peak_flops(mfu.device_name(t.device), t.precision))
    if r.peak_flops is not None:
        r.flops_per_token = mfu.flops_per_token(mfu.training_rates(t.model, t.params), t.batches.train_set)
    t.progress = lambda batches, name: tqdm(batches, desc=name, leave=False, dynamic_ncols=True,
                                            disable=None if r.show_progress else True)
    if resume and run.has_checkpoint():
        restore(t, run)  # a run stopped before its first save has no last/: it starts again from step 0
    raise_pending()  # a signal that a library caught during set-up: stop before the first write
    run.create()
    if t.config.train.tensorboard:
        run.open_tensorboard(t.state.step)
    return r


def fit(r: TrainingRun) -> dict:
    """Run the loop, recording every event; Ctrl-C / SIGTERM stop it at a safe point (`interrupted`)."""
    t = r.t
    reset_peak_memory(t.device)  # the summary's peak is this training's (and its validations'), no more
    r.run.log({"type": "start", "total_steps": t.total_steps, "steps_per_epoch": t.batches.steps_per_epoch,
               "warmup_steps": t.warmup_steps, "device": str(t.device), "precision": t.precision,
               "world_size": t.dist.world_size, "process_group": t.dist.backend, "resumed_at": t.state.step,
               "train_examples": len(t.batches.train_set), "validation_examples": len(t.batches.val_set),
               "padding_fraction": t.batches.padding_fraction})
    say(r, console.start_banner(t, r.run.path))
    try:
        with Interrupt() as interrupt:  # a signal lets the step or validation in flight finish first
            for event in training.fit(t):
                record(r, event)
                due = isinstance(event, training.Step) and training.validation_due(t)
                if not due:  # every process checks here, so all stop after the same event
                    signum = distributed.agreed_signal(interrupt.signal, t.dist, t.device)
                    if signum is not None:
                        return interrupted(r, signum)
    except torch.OutOfMemoryError:
        b = t.config.train
        raise MinisummError(
            f"CUDA ran out of memory at --batch-size {b.batch_size} (sequences up to {t.config.data.max_length} "
            f"tokens); try --batch-size {max(b.batch_size // 2, 1)} --grad-accum {b.grad_accum * 2} (the same "
            f"effective batch) or --grad-checkpointing.") from None
    finally:
        if r.bar is not None:
            r.bar.close()
    summary = run_summary(r)
    r.run.write_summary(summary)
    r.run.close()
    distributed.teardown(t.dist)
    return summary


def record(r: TrainingRun, event: training.Step | training.Validation) -> None:
    """What train.py does with one event of the loop."""
    if isinstance(event, training.Step):
        record_step(r, event)
    else:
        record_validation(r, event)


def record_step(r: TrainingRun, step: training.Step) -> None:
    """The progress bar; a line in metrics.jsonl every --log-every steps, the first and the last."""
    t = r.t
    r.recent_losses.append(step.loss)
    if r.bar is None:
        r.bar = tqdm(total=t.total_steps, initial=step.step - 1, desc="train", dynamic_ncols=True,
                     disable=None if r.show_progress else True)  # None: off when stderr is not a terminal
    r.bar.update(1)
    r.bar.set_postfix(loss=f"{step.loss:.3f}", lr=f"{step.lr:.2e}", tok_s=f"{step.tokens / step.seconds:.0f}")
    if step.step % t.config.train.log_every == 0 or step.step in (1, t.total_steps):
        r.run.log({"type": "train", "step": step.step, "epoch": step.step / t.batches.steps_per_epoch,
                   "loss": step.loss, "lr": step.lr, "grad_norm": step.grad_norm,
                   "tokens_per_s": step.tokens / step.seconds})


def record_validation(r: TrainingRun, validation: training.Validation) -> None:
    """best/ at a new best → metrics.jsonl → one console line → last/."""
    t, state = r.t, r.t.state
    if validation.improved:  # a projected prefix is saved folded into its keys and values
        config, weights = methods.for_inference(t.config, t.best_weights, t.model.config.n_layer,
                                                t.model.config.n_head)
        r.run.save_best(weights, config)
    epoch = validation.step / t.batches.steps_per_epoch
    r.run.log({"type": "eval", "step": validation.step, "epoch": epoch, "val_loss": validation.loss,
               "best_loss": state.best_loss, "improved": validation.improved,
               "early_stop": validation.early_stop})
    train_loss = sum(r.recent_losses) / len(r.recent_losses) if r.recent_losses else None
    say(r, console.eval_line(step=validation.step, total_steps=t.total_steps, epoch=epoch, train_loss=train_loss,
                             val_loss=validation.loss, best_loss=state.best_loss, improved=validation.improved,
                             patience_left=t.config.train.patience - state.bad_evals,
                             tokens_per_s=state.train_tokens / state.train_time_s if state.train_time_s else None,
                             mfu=utilisation(r)))
    r.recent_losses.clear()
    save_last(t, r.run)


def utilisation(r: TrainingRun) -> float | None:
    """MFU of the training steps so far (`minisumm.mfu`), all processes; None on a device without a known peak."""
    state = r.t.state
    if r.peak_flops is None or not state.train_time_s:
        return None
    return mfu.utilisation(r.flops_per_token, state.train_tokens / state.train_time_s, r.peak_flops,
                           r.t.dist.world_size)


def say(r: TrainingRun, text: str) -> None:
    """A line for people, on the main process only, printed above the progress bar."""
    if r.t.dist.is_main:
        tqdm.write(text)


def interrupted(r: TrainingRun, signum: int) -> dict:
    """Ctrl-C or SIGTERM at a safe point: save last/ and say how to continue."""
    t = r.t
    save_last(t, r.run)
    name = signal.Signals(signum).name
    r.run.log({"type": "interrupted", "step": t.state.step, "signal": name})
    r.run.close()
    distributed.teardown(t.dist)
    return {"interrupted": name, "step": t.state.step,
            "message": f"Interrupted by {name} at step {t.state.step}: saved {r.run.path / 'last'}; continue "
                       f"with python train.py --resume {r.run.path}"}


def run_summary(r: TrainingRun) -> dict:
    """summary.json: what was trained, how well, and what it cost."""
    t = r.t
    state, n_params = t.state, sum(p.numel() for p in t.model.parameters())
    trainable = sum(p.numel() for p in t.params)
    utilised = utilisation(r)
    return {
        "method": t.config.method.method, "model": t.config.model.model,
        "trainable_params": trainable, "total_params": n_params, "trainable_share": trainable / n_params,
        "best_val_loss": state.best_loss, "best_step": state.best_step, "steps": state.step,
        "epochs": state.step / t.batches.steps_per_epoch, "total_steps": t.total_steps,
        "stopped_early": state.step < t.total_steps, "train_time_s": state.train_time_s,
        "wall_time_s": r.run.wall_time(), "tokens_per_s": state.train_tokens / max(state.train_time_s, 1e-9),
        "peak_memory_mb": peak_memory_mb(t.device), "peak_memory_measures": console.memory_words(str(t.device)),
        # only the main process writes best/; the others would race its renames
        "checkpoint_bytes": folder_size(r.run.path / "best") if t.dist.is_main else 0,
        "device": str(t.device), "precision": t.precision, "world_size": t.dist.world_size,
        "effective_batch": t.config.train.batch_size * t.dist.world_size * t.config.train.grad_accum,
        "padding_fraction": t.batches.padding_fraction,
        # on a GPU of minisumm.mfu's table only: model FLOPs utilisation, and what it was computed from
        **({"mfu": utilised, "model_flops_per_token": r.flops_per_token, "peak_tflops": r.peak_flops / 1e12,
            "gpu": mfu.device_name(t.device)} if utilised is not None else {}),
    }
