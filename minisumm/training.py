"""The training loop: AdamW, warmup + cosine, gradient accumulation, mixed precision, clipping, early stopping.

    t = setup(config)           plain objects: device, process group, model + method, data, loss, optimizer
    for event in fit(t):        the step-0 validation, then `train_step` until done, validating when due;
        ...                     each `Step` and `Validation` comes out as it happens, for the caller to use
    train_step(t) → Step        ONE optimizer step, top to bottom, in the order nanoGPT made familiar:

        lr for this step (warmup + cosine, `minisumm.schedule`)
        → k micro-batches: autocast forward → summed loss / label tokens of the whole step → (scaled) backward
        → unscale → clip the gradient norm (--max-grad-norm) → optimizer step → zero_grad
    validate(t) → Validation    validation loss → keep the best weights → early stopping

The loop never asks which method it trains: it receives the model and its trainable parameters from
`minisumm.methods.apply` (through `minisumm.model.build`). The loss is `minisumm.loss.label_loss`, a sum and a
count; by default its exact faster equal `minisumm.speedups.label_loss` computes it (with block attention and
the fused GELU), and `--no-speedups` trains with the plain code itself. Each micro-batch's summed loss is
divided by the label tokens of the whole step (all micro-batches, all processes), so k accumulated
micro-batches give exactly the gradient of one batch k times larger, and DDP's gradient average gives that of
one process with the same global batch.

On a GPU the host only queues kernels, and each time it reads a device value it waits until the device has
caught up, with nothing queued behind. So a step reads the device ONCE: loss, gradient norm and token count
together, before the update. The micro-batches come collated and pinned (`minisumm.batching`; the next step's
are collated while the device computes this one), are copied without waiting, carry their label slots
(`minisumm.speedups.labelled_positions`) and go through attention without a mask (`minisumm.model.body`).

Mixed precision (Micikevicius et al. 2018): with fp16 the GradScaler multiplies the loss by S so that small
gradients do not underflow; `unscale_` divides them back before clipping, so clipping sees the true norm. If
they overflowed, `scaler.step` skips the update and `scaler.update` halves S. With fp32 or bf16 the scaler is
disabled and each of its calls is the plain one.

Everything around the loop is the caller's: train.py's run folder, checkpoints, metrics.jsonl, console lines,
progress bars, Ctrl-C, resuming and the token cache are `minisumm.tools.training_run`, which runs `fit`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from minisumm import batching, data, distributed, methods, speedups
from minisumm.batching import IGNORE_INDEX
from minisumm.compiling import compile_blocks
from minisumm.config import RunConfig
from minisumm.device import autocast, resolve_device, resolve_precision
from minisumm.errors import MinisummError
from minisumm.loss import label_loss, loss_from_totals, loss_totals
from minisumm.model import build
from minisumm.schedule import lr_at


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
    model: torch.nn.Module
    tokenizer: object
    params: list[torch.nn.Parameter]  # the trainable ones, each once
    loss_fn: Callable  # minisumm.loss.label_loss, or its faster equal minisumm.speedups.label_loss
    loss_module: torch.nn.Module  # LossModule, wrapped in DistributedDataParallel under torchrun
    optimizer: torch.optim.AdamW
    scaler: torch.amp.GradScaler
    batches: batching.StepBatches
    total_steps: int
    warmup_steps: int
    eval_every: int
    state: TrainState = field(default_factory=TrainState)
    best_weights: dict[str, torch.Tensor] | None = None
    progress: Callable = lambda batches, name: batches  # a hook: wraps the validation batches (a progress bar)


@dataclass
class Step:
    """What one optimizer step did (`train_step`)."""
    step: int  # optimizer steps done, this one included
    lr: float
    loss: float  # the mean loss per label token of the whole step
    grad_norm: float  # before clipping (inf or NaN when fp16 gradients overflowed and the step was skipped)
    tokens: int  # real tokens (padding not counted) of the whole step, all processes
    seconds: float


@dataclass
class Validation:
    """What one validation found (`validate`)."""
    step: int
    loss: float
    improved: bool  # a new best: its weights are now `Training.best_weights`
    early_stop: bool  # patience ran out before the schedule's last step


class LossModule(torch.nn.Module):
    """Wraps the model so that DistributedDataParallel's forward is the label loss (DDP hooks run there)."""

    def __init__(self, model, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, input_ids, labels, label_slots):
        # no attention mask: the batches are right-padded (`minisumm.model.body`)
        return self.loss_fn(self.model, input_ids, None, labels, label_slots)


def make_optimizer(params, config: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with two groups: weight decay on tensors of 2+ dims (matrices, the soft prompt), none on 1-D
    tensors (biases, layer-norm gains) unless --decay-1d. Fused (one kernel for all tensors) on CUDA."""
    decay = [p for p in params if p.ndim >= 2 or config.train.decay_1d]
    no_decay = [p for p in params if not (p.ndim >= 2 or config.train.decay_1d)]
    groups = [{"params": decay, "weight_decay": config.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.peak_lr(), betas=(0.9, 0.999),
                             fused=device.type == "cuda")


def encode_splits(config: RunConfig, tokenizer) -> dict[str, list[dict[str, list[int]]]]:
    """The train and validation examples, tokenised and laid out (`minisumm.batching.encode_examples`)."""
    splits = data.load_splits(config.data, config.train.seed, splits=("train", "validation"))
    prefix = methods.prefix_tokens(config.method)
    return {name: batching.encode_examples(tokenizer, examples, config.data, prefix)
            for name, examples in splits.items()}


# ---------------------------------------------------------------------------------------------- set-up
def setup(config: RunConfig, *, load=None, encode=encode_splits) -> Training:
    """Device, process group, model + method, data, loss, optimizer and schedule, as plain objects.

    Two hooks, for what the commands do differently: `load(config.model)` gives the base model and tokenizer
    (`minisumm.model.build`), and `encode(config, tokenizer)` the tokenised splits (train.py reads and writes
    an on-disk cache of the same examples)."""
    config.validate()
    device = resolve_device(config.train.device, distributed.local_rank())
    dist = distributed.setup(device)
    precision = resolve_precision(config.train.precision, device)

    torch.manual_seed(config.train.seed)  # the method's own initialisation (LoRA A, sampled prompt ids)
    model, tokenizer, params, config = build(config, load)
    if dist.rank:  # every process its own dropout masks (the weights are rank 0's: DDP broadcasts them)
        torch.manual_seed(distributed.dropout_seed(config.train.seed, dist.rank, 0))
    model.to(device)
    speedups.prepare_for_training(model, config.train.grad_checkpointing, speedups=config.train.speedups)
    if config.train.compile:
        compile_blocks(model)
    loss_fn = speedups.label_loss if config.train.speedups else label_loss  # the same sum and count
    loss_module = LossModule(model, loss_fn)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel
        # gradient_as_bucket_view: .grad are views into DDP's all-reduce buckets, not a second copy
        loss_module = DistributedDataParallel(loss_module, gradient_as_bucket_view=True,
                                              device_ids=[device.index] if device.type == "cuda" else None)

    splits = encode(config, tokenizer)
    if not splits["train"] or not splits["validation"]:
        raise MinisummError("The train and validation splits need at least one example each; give more data "
                            "or other --split-ratios.")
    t = config.train
    batches = batching.StepBatches(splits["train"], splits["validation"], tokenizer.eos_token_id,
                                   batch_size=t.batch_size, grad_accum=t.grad_accum, seed=t.seed,
                                   group_by_length=config.data.group_by_length, eval_batches=t.eval_batches,
                                   rank=dist.rank, world=dist.world_size, pin=device.type == "cuda")
    total_steps = min(config.max_epochs() * batches.steps_per_epoch, t.max_steps or math.inf)
    return Training(config=config, device=device, dist=dist, precision=precision, model=model,
                    tokenizer=tokenizer, params=params, loss_fn=loss_fn, loss_module=loss_module,
                    optimizer=make_optimizer(params, config, device),
                    scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
                    batches=batches, total_steps=total_steps, warmup_steps=round(t.warmup_ratio * total_steps),
                    eval_every=t.eval_every or batches.steps_per_epoch)


# ---------------------------------------------------------------------------------------------- the loop
def fit(t: Training) -> Iterator[Step | Validation]:
    """Validate the untrained model (step 0), then step until the schedule ends or early stopping, validating
    when due; end with the best validation weights in the model. Each `Step` and `Validation` is yielded as it
    happens: between any two the caller may log, save, or stop (a resumed run continues from `t.state`)."""
    if t.state.step == 0:
        yield validate(t)  # the untrained model's validation loss: the baseline every run starts from
    while t.state.step < t.total_steps and not t.state.done:
        yield train_step(t)
        if validation_due(t):
            yield validate(t)
    t.state.done = True
    if t.best_weights is not None:  # end with the best validation weights
        methods.load_trainable_state_dict(t.model, t.best_weights)


def validation_due(t: Training) -> bool:
    """Does the step just taken end with a validation (every `eval_every` steps, and at the last step)?"""
    return t.state.step % t.eval_every == 0 or t.state.step == t.total_steps


def train_step(t: Training) -> Step:
    """One optimizer step, top to bottom."""
    config, state = t.config.train, t.state
    lr = lr_at(state.step, peak=t.config.peak_lr(), warmup_steps=t.warmup_steps, total_steps=t.total_steps,
               min_lr=t.config.peak_lr() * config.min_lr_ratio)
    for group in t.optimizer.param_groups:
        group["lr"] = lr
    started = time.perf_counter()
    # this process's share of the step's k micro-batches; from pinned memory on a GPU, so the copies run async
    micro_batches = [{name: tensor.to(t.device, non_blocking=tensor.is_pinned()) for name, tensor in batch.items()}
                     for batch in t.batches.for_step(state.step)]
    # label tokens of the whole step, all processes: every micro-batch's loss sum is divided by this
    labels = sum((b["labels"][:, 1:] != IGNORE_INDEX).sum() for b in micro_batches)
    step_tokens = distributed.all_sum(labels.float(), t.dist)
    t.loss_module.train()
    loss_sum = torch.zeros((), device=t.device)
    for i, batch in enumerate(micro_batches):
        last = i == len(micro_batches) - 1  # DDP averages gradients once, after the step's last backward
        with contextlib.nullcontext() if last or not t.dist.enabled else t.loss_module.no_sync():
            with autocast(t.device, t.precision):
                micro_sum, _ = t.loss_module(batch["input_ids"], batch["labels"], batch["label_slots"])
            # DDP averages over processes; x world size turns that into a sum over every token of the step
            t.scaler.scale(micro_sum * t.dist.world_size / step_tokens).backward()
        loss_sum += micro_sum.detach()
    if state.step + 1 < t.total_steps:
        t.batches.prefetch(state.step + 1)  # the host collates the next step while the device computes this one
    t.scaler.unscale_(t.optimizer)  # fp16: divide the gradients by the loss scale before clipping
    grad_norm = torch.nn.utils.clip_grad_norm_(t.params, config.max_grad_norm or math.inf)
    tokens = distributed.all_sum(sum(b["attention_mask"].sum() for b in micro_batches), t.dist)
    # the step's one wait for the device: loss, norm and tokens read together, before the update
    step_loss, grad_norm, tokens = torch.stack([(distributed.all_sum(loss_sum, t.dist) / step_tokens).double(),
                                                grad_norm.double(), tokens.double()]).tolist()
    if not math.isfinite(step_loss) and not t.scaler.is_enabled():  # fp16: the scaler skips the step instead
        raise MinisummError(
            f"The training loss became {step_loss} at step {state.step}; stopped before applying it, so the "
            f"last saved checkpoint (last/) is the last good one; lower --lr or use --precision fp32.")
    t.scaler.step(t.optimizer)  # skipped if the unscaled gradients hold inf or NaN
    t.scaler.update()
    t.optimizer.zero_grad(set_to_none=True)
    state.step += 1

    elapsed = time.perf_counter() - started
    tokens = int(tokens)
    state.train_time_s += elapsed
    state.train_tokens += tokens
    return Step(step=state.step, lr=lr, loss=step_loss, grad_norm=grad_norm, tokens=tokens, seconds=elapsed)


def validate(t: Training) -> Validation:
    """Validation loss → keep the best weights → early stopping after `patience` validations without a new best."""
    state = t.state
    val_loss = validation_loss(t)
    improved = val_loss < state.best_loss
    if improved:
        state.best_loss, state.best_step, state.bad_evals = val_loss, state.step, 0
        t.best_weights = {k: v.detach().to("cpu", copy=True)
                          for k, v in methods.trainable_state_dict(t.model).items()}
    else:
        state.bad_evals += 1
        state.done = state.bad_evals >= t.config.train.patience
    return Validation(step=state.step, loss=val_loss, improved=improved,
                      early_stop=state.done and state.step < t.total_steps)


def validation_loss(t: Training) -> float:
    """The training loss on the validation split: each process sums its share, then all are added."""
    batches = t.progress(t.batches.validation(), "validation")
    loss_sum, tokens = loss_totals(t.model, batches, t.device, t.precision, t.loss_fn)
    totals = distributed.all_sum(torch.stack([loss_sum, tokens.double()]), t.dist)
    return loss_from_totals(float(totals[0]), int(totals[1]))["loss"]
