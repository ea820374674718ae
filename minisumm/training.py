"""The training loop: AdamW, warmup + cosine, gradient accumulation, mixed precision, clipping, early stopping.

    train(config, out)          = fit(setup(config, out))
      setup(...)  → Training    plain objects: device, process group, model + method, data, optimizer, state
      fit(t)                    the step-0 validation, then `train_step` until done, then the summary
      train_step(t)             ONE optimizer step, top to bottom, in the order nanoGPT made familiar:

          lr for this step (warmup + cosine, `minisumm.schedule`)
          → k micro-batches: autocast forward → summed loss / label tokens of the whole step → (scaled) backward
          → unscale → clip the gradient norm (--max-grad-norm) → optimizer step → zero_grad → log
          → when due: validation loss → keep the best weights (best/) → early stopping → save last/

The loop never asks which method it trains: it receives the model and its trainable parameters from
`minisumm.methods.apply` (through `model.build`). The loss is `minisumm.loss`'s sum-and-count, computed by its
exact faster form `minisumm.speedups.label_loss`. Each micro-batch's summed loss is divided by the label
tokens of the whole step (all micro-batches, all processes), so k accumulated micro-batches give exactly the
gradient of one batch k times larger, and DDP's gradient average gives that of one process with the same
global batch.

Mixed precision (Micikevicius et al. 2018): with fp16 the GradScaler multiplies the loss by S so that small
gradients do not underflow; `unscale_` divides them back before clipping, so clipping sees the true norm. If
they overflowed, `scaler.step` skips the update and `scaler.update` halves S. With fp32 or bf16 the scaler is
disabled and each of its calls is the plain one. Files go through `RunFolder` (run folder, checkpoints,
metrics.jsonl); people read `minisumm.tools.console`'s lines.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from minisumm import batching, distributed, methods
from minisumm.batching import IGNORE_INDEX
from minisumm.config import RunConfig
from minisumm.device import autocast, peak_memory_mb, reset_peak_memory, resolve_device, resolve_precision
from minisumm.errors import MinisummError
from minisumm.loss import loss_from_totals, loss_totals
from minisumm.model import build
from minisumm.schedule import lr_at
from minisumm.speedups import label_loss, prepare_for_training
from minisumm.tools import console
from minisumm.tools.checkpoint import folder_size
from minisumm.tools.interrupt import Interrupt
from minisumm.tools.resume import restore, save_last
from minisumm.tools.run_folder import RunFolder
from minisumm.tools.token_cache import build_datasets


@dataclass
class TrainState:
    """Everything about the loop's progress that resuming needs (besides weights, optimizer and RNG)."""
    step: int = 0
    best_loss: float = math.inf
    best_step: int = 0
    bad_evals: int = 0
    train_time_s: float = 0.0
    train_tokens: int = 0
    done: bool = False


@dataclass
class Training:
    """One run while it trains, as `setup` built it. Every field is a plain object a test can inspect."""
    config: RunConfig  # as built (max_length capped at the model's positions)
    device: torch.device
    dist: distributed.Dist
    precision: str  # "fp32", "bf16" or "fp16"
    run: RunFolder
    model: torch.nn.Module
    tokenizer: object
    params: list[torch.nn.Parameter]  # the trainable ones, each once
    loss_module: torch.nn.Module  # LossModule, wrapped in DistributedDataParallel under torchrun
    optimizer: torch.optim.AdamW
    scaler: torch.amp.GradScaler
    batches: batching.StepBatches
    total_steps: int
    warmup_steps: int
    eval_every: int
    state: TrainState = field(default_factory=TrainState)
    best_weights: dict[str, torch.Tensor] | None = None
    show_progress: bool = True
    recent_losses: list[float] = field(default_factory=list)  # training losses since the last validation


class LossModule(torch.nn.Module):
    """Wraps the model so that DistributedDataParallel's forward is the label loss (DDP hooks run there)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels):
        return label_loss(self.model, input_ids, attention_mask, labels)


def make_optimizer(params, config: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with two groups: weight decay on tensors of 2+ dims (matrices, the soft prompt), none on 1-D
    tensors (biases, layer-norm gains) unless --decay-1d. Fused (one kernel for all tensors) on CUDA."""
    decay = [p for p in params if p.ndim >= 2 or config.train.decay_1d]
    no_decay = [p for p in params if not (p.ndim >= 2 or config.train.decay_1d)]
    groups = [{"params": decay, "weight_decay": config.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.peak_lr(), betas=(0.9, 0.999),
                             fused=device.type == "cuda")


def train(config: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          show_progress: bool = True) -> dict:
    """Train one run into the folder `out`; returns the summary (also written to summary.json)."""
    return fit(setup(config, out, resume=resume, overwrite=overwrite, show_progress=show_progress))


# ---------------------------------------------------------------------------------------------- set-up
def setup(config: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          show_progress: bool = True) -> Training:
    """Device, process group, run folder, model + method, data, optimizer, schedule; `last/` when resuming.

    The run folder is checked first and written last (`RunFolder.create`), so a run that fails to start
    leaves nothing behind."""
    config.validate()
    device = resolve_device(config.train.device, distributed.local_rank())
    dist = distributed.setup(device)
    precision = resolve_precision(config.train.precision, device)
    run = RunFolder(Path(out), config, is_main=dist.is_main, resume=resume, overwrite=overwrite)

    console.library_bars(show_progress and dist.is_main)
    torch.manual_seed(config.train.seed)  # the method's own initialisation (LoRA A, sampled prompt ids)
    model, tokenizer, params, config = build(config)
    run.config = config
    model.to(device)
    prepare_for_training(model, config.train.grad_checkpointing)
    loss_module = LossModule(model)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel
        loss_module = DistributedDataParallel(loss_module,
                                              device_ids=[device.index] if device.type == "cuda" else None)

    _, splits = build_datasets(config.data, tokenizer, methods.prefix_tokens(config.method),
                                        config.train.seed, splits=("train", "validation"),
                                        progress=show_progress and dist.is_main)
    if not splits["train"] or not splits["validation"]:
        raise MinisummError("The train and validation splits need at least one example each; give more data "
                            "or other --split-ratios.")
    t = config.train
    batches = batching.StepBatches(splits["train"], splits["validation"], tokenizer.eos_token_id,
                                   batch_size=t.batch_size, grad_accum=t.grad_accum, seed=t.seed,
                                   group_by_length=config.data.group_by_length, eval_batches=t.eval_batches,
                                   rank=dist.rank, world=dist.world_size)
    total_steps = min(t.epochs * batches.steps_per_epoch, t.max_steps or math.inf)
    training = Training(config=config, device=device, dist=dist, precision=precision, run=run, model=model,
                        tokenizer=tokenizer, params=params, loss_module=loss_module,
                        optimizer=make_optimizer(params, config, device),
                        scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
                        batches=batches, total_steps=total_steps,
                        warmup_steps=round(t.warmup_ratio * total_steps),
                        eval_every=t.eval_every or batches.steps_per_epoch,
                        show_progress=show_progress and dist.is_main)
    if resume and run.has_checkpoint():
        restore(training)  # a run stopped before its first save has no last/: it starts again from step 0
    run.create()
    if config.train.tensorboard:
        run.open_tensorboard(training.state.step)
    return training


# ---------------------------------------------------------------------------------------------- the loop
def fit(t: Training) -> dict:
    """Validate the untrained model (step 0), step until the schedule ends or early stopping, summarise."""
    reset_peak_memory(t.device)  # the summary's peak is this training's (and its validations'), no more
    start = {"type": "start", "total_steps": t.total_steps, "steps_per_epoch": t.batches.steps_per_epoch,
             "warmup_steps": t.warmup_steps, "device": str(t.device), "precision": t.precision,
             "world_size": t.dist.world_size, "process_group": t.dist.backend, "resumed_at": t.state.step,
             "train_examples": len(t.batches.train_set), "validation_examples": len(t.batches.val_set),
             "padding_fraction": t.batches.padding_fraction}
    t.run.log(start)
    say(t, console.start_banner(t))
    if t.state.step == 0:
        with Interrupt() as interrupt:  # a signal lets this validation finish and save last/ first
            evaluate(t)  # the untrained model's validation loss: the baseline every run starts from
        if interrupt.signal is not None:
            return interrupted(t, interrupt.signal)
    bar = tqdm(total=t.total_steps, initial=t.state.step, desc="train", dynamic_ncols=True,
               disable=None if t.show_progress else True)  # None: off when stderr is not a terminal
    try:
        with Interrupt() as interrupt:
            while t.state.step < t.total_steps and not t.state.done:
                train_step(t, bar)
                if interrupt.signal is not None:
                    return interrupted(t, interrupt.signal)
    except torch.OutOfMemoryError:
        b = t.config.train
        raise MinisummError(
            f"CUDA ran out of memory at --batch-size {b.batch_size} (sequences up to {t.config.data.max_length} "
            f"tokens); try --batch-size {max(b.batch_size // 2, 1)} --grad-accum {b.grad_accum * 2} (the same "
            f"effective batch) or --grad-checkpointing.") from None
    finally:
        bar.close()
    t.state.done = True
    if t.best_weights is not None:  # end with the best validation weights, as saved in best/
        methods.load_trainable_state_dict(t.model, t.best_weights)
    summary = run_summary(t)
    t.run.write_summary(summary)
    t.run.close()
    distributed.teardown(t.dist)
    return summary


def train_step(t: Training, bar=None) -> None:
    """One optimizer step, top to bottom; then validation, early stopping and saving when they are due."""
    config, state = t.config.train, t.state
    lr = lr_at(state.step, peak=t.config.peak_lr(), warmup_steps=t.warmup_steps, total_steps=t.total_steps,
               min_lr=t.config.peak_lr() * config.min_lr_ratio)
    for group in t.optimizer.param_groups:
        group["lr"] = lr
    started = time.perf_counter()
    micro_batches = t.batches.for_step(state.step)  # this process's share of the step's k micro-batches
    # label tokens of the whole step, all processes: every micro-batch's loss sum is divided by this
    labels = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro_batches)
    step_tokens = distributed.all_sum(torch.tensor(float(labels), device=t.device), t.dist)
    t.loss_module.train()
    loss_sum = torch.zeros((), device=t.device)
    for i, batch in enumerate(micro_batches):
        batch = {k: v.to(t.device) for k, v in batch.items()}  # a few KB of ids: a plain synchronous copy
        last = i == len(micro_batches) - 1  # DDP averages gradients once, after the step's last backward
        with contextlib.nullcontext() if last or not t.dist.enabled else t.loss_module.no_sync():
            with autocast(t.device, t.precision):
                micro_sum, _ = t.loss_module(**batch)  # summed loss over this micro-batch's label tokens
            # DDP averages over processes; x world size turns that into a sum over every token of the step
            t.scaler.scale(micro_sum * t.dist.world_size / step_tokens).backward()
        loss_sum += micro_sum.detach()
    step_loss = float(distributed.all_sum(loss_sum, t.dist) / step_tokens)
    if not math.isfinite(step_loss) and not t.scaler.is_enabled():  # fp16: the scaler skips the step instead
        raise MinisummError(
            f"The training loss became {step_loss} at step {state.step}; stopped without saving it, so "
            f"{t.run.path / 'last'} still holds the last good checkpoint; lower --lr or use --precision fp32.")
    t.scaler.unscale_(t.optimizer)  # fp16: divide the gradients by the loss scale before clipping
    grad_norm = float(torch.nn.utils.clip_grad_norm_(t.params, config.max_grad_norm or math.inf))
    t.scaler.step(t.optimizer)  # skipped if the unscaled gradients hold inf or NaN
    t.scaler.update()
    t.optimizer.zero_grad(set_to_none=True)
    state.step += 1

    elapsed = time.perf_counter() - started
    tokens = int(distributed.all_sum(torch.tensor(sum(int(b["attention_mask"].sum()) for b in micro_batches),
                                                  device=t.device), t.dist))
    state.train_time_s += elapsed
    state.train_tokens += tokens
    t.recent_losses.append(step_loss)
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tokens / elapsed:.0f}")
    if state.step % config.log_every == 0 or state.step in (1, t.total_steps):
        t.run.log({"type": "train", "step": state.step, "epoch": state.step / t.batches.steps_per_epoch,
                   "loss": step_loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens / elapsed})
    if state.step % t.eval_every == 0 or state.step == t.total_steps:
        evaluate(t)


def evaluate(t: Training) -> None:
    """Validation loss → keep the best weights (best/) → early stopping → save last/; one console line."""
    state, patience = t.state, t.config.train.patience
    val_loss = validation_loss(t)
    improved = val_loss < state.best_loss
    if improved:
        state.best_loss, state.best_step, state.bad_evals = val_loss, state.step, 0
        t.best_weights = {k: v.detach().to("cpu", copy=True)
                          for k, v in methods.trainable_state_dict(t.model).items()}
        t.run.save_best(t.best_weights)
    else:
        state.bad_evals += 1
        state.done = state.bad_evals >= patience
    epoch = state.step / t.batches.steps_per_epoch
    t.run.log({"type": "eval", "step": state.step, "epoch": epoch, "val_loss": val_loss,
               "best_loss": state.best_loss, "improved": improved,
               "early_stop": state.done and state.step < t.total_steps})
    train_loss = sum(t.recent_losses) / len(t.recent_losses) if t.recent_losses else None
    say(t, console.eval_line(step=state.step, total_steps=t.total_steps, epoch=epoch, train_loss=train_loss,
                             val_loss=val_loss, best_loss=state.best_loss, improved=improved,
                             patience_left=patience - state.bad_evals,
                             tokens_per_s=state.train_tokens / state.train_time_s if state.train_time_s else None))
    t.recent_losses.clear()
    save_last(t)


def validation_loss(t: Training) -> float:
    """The training loss on the validation split: each process sums its share, then all are added."""
    batches = tqdm(t.batches.validation(), desc="validation", leave=False, dynamic_ncols=True,
                   disable=None if t.show_progress else True)
    loss_sum, tokens = loss_totals(t.model, batches, t.device, t.precision, label_loss)
    totals = distributed.all_sum(torch.stack([loss_sum, tokens.double()]), t.dist)
    return loss_from_totals(float(totals[0]), int(totals[1]))["loss"]


def say(t: Training, text: str) -> None:
    """A line for people, on the main process only, printed above the progress bar."""
    if t.dist.is_main:
        tqdm.write(text)


# ---------------------------------------------------------------------------------------------- endings
def interrupted(t: Training, signum: int) -> dict:
    """Ctrl-C or SIGTERM at a safe point: save last/ and say how to continue."""
    save_last(t)
    name = signal.Signals(signum).name
    t.run.log({"type": "interrupted", "step": t.state.step, "signal": name})
    t.run.close()
    distributed.teardown(t.dist)
    return {"interrupted": name, "step": t.state.step,
            "message": f"Interrupted by {name} at step {t.state.step}: saved {t.run.path / 'last'}; continue "
                       f"with python train.py --resume {t.run.path}"}


def run_summary(t: Training) -> dict:
    """summary.json: what was trained, how well, and what it cost."""
    state, n_params = t.state, sum(p.numel() for p in t.model.parameters())
    trainable = sum(p.numel() for p in t.params)
    return {
        "method": t.config.method.method, "model": t.config.model.model,
        "trainable_params": trainable, "total_params": n_params, "trainable_share": trainable / n_params,
        "best_val_loss": state.best_loss, "best_step": state.best_step, "steps": state.step,
        "epochs": state.step / t.batches.steps_per_epoch, "total_steps": t.total_steps,
        "stopped_early": state.step < t.total_steps, "train_time_s": state.train_time_s,
        "wall_time_s": t.run.wall_time(), "tokens_per_s": state.train_tokens / max(state.train_time_s, 1e-9),
        "peak_memory_mb": peak_memory_mb(t.device), "peak_memory_measures": console.memory_words(str(t.device)),
        # only the main process writes best/; the others would race its renames
        "checkpoint_bytes": folder_size(t.run.path / "best") if t.dist.is_main else 0,
        "device": str(t.device), "precision": t.precision, "world_size": t.dist.world_size,
        "effective_batch": t.config.train.batch_size * t.dist.world_size * t.config.train.grad_accum,
        "padding_fraction": t.batches.padding_fraction,
    }
