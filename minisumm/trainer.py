"""The hand-rolled training loop: AdamW, warmup + cosine, accumulation, clipping, mixed precision, early stopping.

One optimizer step, top to bottom (the order nanoGPT made familiar):

    lr for this step → k micro-batches: autocast forward → loss / tokens → (scaled) backward
    → unscale → clip to 1.0 → optimizer step → zero_grad(set_to_none=True) → log
    → every `eval_every` steps: validation loss → keep the best weights → early stopping → save last/

The loop never asks which method it trains: it receives the model and its trainable parameters from
`minisumm.methods.apply`. The loss is `forward.label_loss`, which runs the LM head and most of the last
block at the summary positions only. Two more exact savings are set up once (`prepare_for_training`): on
CPU, attention with dropout in causal blocks (`minisumm.speedups.block_attention`), and GPT-2's GELU as one fused kernel.
Each micro-batch's summed loss is divided by the label tokens of the whole step (all micro-batches, all
processes), so k accumulated micro-batches give exactly the gradient of one batch k times larger, and
DDP's gradient average gives that of one process with the same global batch.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from minisumm import batching, distributed, methods
from minisumm.model import build
from minisumm.tools.checkpoint import folder_size
from minisumm.config import RunConfig
from minisumm.device import (autocast, peak_memory_mb, reset_peak_memory, resolve_device, resolve_precision,
                             rng_state, set_rng_state)
from minisumm.errors import MinisummError
from minisumm.batching import IGNORE_INDEX
from minisumm.speedups.labelled_positions import label_loss
from minisumm.tools.interrupt import Interrupt
from minisumm.loss import loss_from_totals, loss_totals
from minisumm.speedups import prepare_for_training
from minisumm.tools.run_folder import RunFolder
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


class LossModule(torch.nn.Module):
    """Wraps the model so that DistributedDataParallel's forward is the label loss (DDP hooks run there)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels):
        return label_loss(self.model, input_ids, attention_mask, labels)


def make_optimizer(params, config: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with two groups: weight decay on tensors of 2+ dims (matrices, the soft prompt), none on 1-D."""
    decay = [p for p in params if p.ndim >= 2 or config.train.decay_1d]
    no_decay = [p for p in params if not (p.ndim >= 2 or config.train.decay_1d)]
    groups = [{"params": decay, "weight_decay": config.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.peak_lr(), betas=(0.9, 0.999),
                             fused=device.type == "cuda")


def optimizer_step(optimizer, scaler: torch.amp.GradScaler, params, max_grad_norm: float) -> float:
    """unscale → clip → step → update → zero_grad(set_to_none=True); returns the norm before clipping.

    With fp16 the scaler multiplied the loss by S (Micikevicius et al. 2018, "loss scaling"), so the gradients
    are S times too large until `unscale_` divides them: clipping comes after it and sees the true norm. If
    they overflowed (inf or NaN after unscaling, so the norm is too), `scaler.step` skips the update and
    `scaler.update` halves S; after 2,000 clean steps it doubles S. With the scaler disabled (fp32, bf16)
    unscale and update do nothing and step is the optimizer's. `max_grad_norm` 0 turns clipping off.
    """
    scaler.unscale_(optimizer)
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm > 0 else math.inf))
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


def count_label_tokens(batch: dict) -> int:
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


class Trainer:
    """Trains one run into a run folder. `Trainer(config, out).train()` returns the summary dict."""

    def __init__(self, config: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
                 show_progress: bool = True):
        config.validate()
        self.config = config
        self.device = resolve_device(config.train.device, distributed.local_rank())
        self.dist = distributed.setup(self.device)
        self.precision = resolve_precision(config.train.precision, self.device)
        self.run = RunFolder(Path(out), config, is_main=self.dist.is_main, resume=resume, overwrite=overwrite)
        self.show_progress = show_progress and self.dist.is_main
        self.state = TrainState()

        torch.manual_seed(config.train.seed)  # the method's own initialisation (LoRA A, sampled prompt ids)
        self.model, self.tokenizer, self.params, config = build(config)
        self.config = config
        self.model.to(self.device)
        prepare_for_training(self.model, config.train.grad_checkpointing)
        self.loss_module = LossModule(self.model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel
            self.loss_module = DistributedDataParallel(
                self.loss_module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = make_optimizer(self.params, config, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

        _, splits = batching.build_datasets(config.data, self.tokenizer, methods.prefix_tokens(config.method),
                                            config.train.seed, splits=("train", "validation"))
        self.train_set, self.val_set = splits["train"], splits["validation"]
        if not self.train_set or not self.val_set:
            raise MinisummError("The train and validation splits need at least one example each; give more data "
                                "or other --split-ratios.")
        self.lengths = [len(example["input_ids"]) for example in self.train_set]
        self.global_batch = config.train.batch_size * self.dist.world_size
        first_epoch = self._epoch_batches(0)
        micro_per_epoch = len(first_epoch)
        # share of the positions in a batch that are padding (per process, with length grouping if on)
        self.padding_fraction = batching.padding_fraction(
            [ids[self.dist.rank::self.dist.world_size] for ids in first_epoch], self.lengths)
        self.steps_per_epoch = math.ceil(micro_per_epoch / config.train.grad_accum)
        total = config.train.epochs * self.steps_per_epoch
        self.total_steps = min(total, config.train.max_steps or total)
        self.warmup_steps = round(config.train.warmup_ratio * self.total_steps)
        self.eval_every = config.train.eval_every or self.steps_per_epoch
        self.best_weights = None
        self._cached_epoch, self._cached_batches = None, []
        if resume and self.run.has_checkpoint():
            self._restore()  # a run stopped before its first save has no last/: it starts again from step 0
        self.run.create()

    # ----------------------------------------------------------------------------------------- data
    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """This epoch's global micro-batches (indices), seeded by (seed, epoch): resuming needs only the step."""
        batches = batching.batch_order(self.lengths, self.global_batch, seed=self.config.train.seed, epoch=epoch,
                                       shuffle=True, group_by_length=self.config.data.group_by_length)
        if self.dist.enabled:  # every process needs a share of every micro-batch
            batches = [b for b in batches if len(b) >= self.dist.world_size]
        return batches

    def _step_batches(self, step: int) -> list[dict]:
        epoch, index = divmod(step, self.steps_per_epoch)
        if self._cached_epoch != epoch:
            self._cached_epoch, self._cached_batches = epoch, self._epoch_batches(epoch)
        accum = self.config.train.grad_accum
        chunk = self._cached_batches[index * accum:(index + 1) * accum]
        rank, world = self.dist.rank, self.dist.world_size
        return [batching.collate([self.train_set[i] for i in ids[rank::world]], self.tokenizer.eos_token_id)
                for ids in chunk]

    def _val_batches(self) -> list[dict]:
        """The validation split in a fixed order, sorted by length so that batches carry little padding."""
        by_length = sorted(range(len(self.val_set)), key=lambda i: len(self.val_set[i]["input_ids"]))
        size = self.config.train.batch_size
        order = [by_length[i:i + size] for i in range(0, len(by_length), size)]
        order = order[:self.config.train.eval_batches] if self.config.train.eval_batches else order
        mine = order[self.dist.rank::self.dist.world_size]
        return [batching.collate([self.val_set[i] for i in ids], self.tokenizer.eos_token_id) for ids in mine]

    # ----------------------------------------------------------------------------------------- loop
    def train(self) -> dict:
        config, state = self.config, self.state
        reset_peak_memory(self.device)  # the summary's peak is this training's (and its validations'), no more
        self.run.log({"type": "start", "total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
                      "warmup_steps": self.warmup_steps, "device": str(self.device), "precision": self.precision,
                      "world_size": self.dist.world_size, "process_group": self.dist.backend,
                      "resumed_at": state.step,
                      "train_examples": len(self.train_set), "validation_examples": len(self.val_set),
                      "padding_fraction": self.padding_fraction})
        if state.step == 0:
            with Interrupt() as interrupt:  # a signal lets this validation finish and save last/ first
                self._evaluate()  # the untrained model's validation loss: the baseline every run starts from
            if interrupt.signal is not None:
                return self._interrupted(interrupt.signal)
        bar = tqdm(total=self.total_steps, initial=state.step, disable=not self.show_progress, desc="train",
                   dynamic_ncols=True)
        try:
            with Interrupt() as interrupt:
                while state.step < self.total_steps and not state.done:
                    self._train_step(bar)
                    if state.step % self.eval_every == 0 or state.step == self.total_steps:
                        self._evaluate()
                    if interrupt.signal is not None:
                        return self._interrupted(interrupt.signal)
        except torch.OutOfMemoryError:
            raise MinisummError(
                f"CUDA ran out of memory at --batch-size {config.train.batch_size} (sequences up to "
                f"{config.data.max_length} tokens); try --batch-size {max(config.train.batch_size // 2, 1)} "
                f"--grad-accum {config.train.grad_accum * 2} (the same effective batch) or --grad-checkpointing."
            ) from None
        finally:
            bar.close()
        state.done = True
        if self.best_weights is not None:  # end with the best validation weights, as saved in best/
            methods.load_trainable_state_dict(self.model, self.best_weights)
        summary = self._summary()
        self.run.write_summary(summary)
        distributed.teardown(self.dist)
        return summary

    def _train_step(self, bar) -> None:
        config, state = self.config, self.state
        lr = lr_at(state.step, peak=self.config.peak_lr(), warmup_steps=self.warmup_steps,
                   total_steps=self.total_steps, min_lr=config.peak_lr() * config.train.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        started = time.perf_counter()
        micro_batches = self._step_batches(state.step)
        # every tensor given to a collective is made on the training device: NCCL reduces CUDA tensors only
        label_tokens = sum(map(count_label_tokens, micro_batches))
        step_tokens = distributed.all_sum(torch.tensor(float(label_tokens), device=self.device), self.dist)
        self.loss_module.train()
        loss_sum = torch.zeros((), device=self.device)
        input_tokens = sum(int(batch["attention_mask"].sum()) for batch in micro_batches)  # on the host: no sync
        for i, batch in enumerate(micro_batches):
            # a plain copy: non_blocking=True is only asynchronous from pinned memory, and the batches
            # (a few KB of token ids) are not worth pinning
            batch = {k: v.to(self.device) for k, v in batch.items()}
            last = i == len(micro_batches) - 1
            sync = contextlib.nullcontext() if last or not self.dist.enabled else self.loss_module.no_sync()
            with sync:
                with autocast(self.device, self.precision):
                    micro_sum, _ = self.loss_module(**batch)
                # DDP averages gradients over processes; scaling by world size makes that a sum over all tokens
                loss = micro_sum * self.dist.world_size / step_tokens
                self.scaler.scale(loss).backward()
            loss_sum += micro_sum.detach()
        step_loss = float(distributed.all_sum(loss_sum, self.dist) / step_tokens)
        if not math.isfinite(step_loss) and not self.scaler.is_enabled():
            raise MinisummError(
                f"The training loss became {step_loss} at step {state.step}; stopped without saving it, so "
                f"{self.run.path / 'last'} still holds the last good checkpoint; lower --lr or use --precision fp32.")
        grad_norm = optimizer_step(self.optimizer, self.scaler, self.params, config.train.max_grad_norm)
        state.step += 1

        elapsed = time.perf_counter() - started
        tokens = int(distributed.all_sum(torch.tensor(input_tokens, device=self.device), self.dist))
        state.train_time_s += elapsed
        state.train_tokens += tokens
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tokens / elapsed:.0f}")
        if state.step % config.train.log_every == 0 or state.step in (1, self.total_steps):
            self.run.log({"type": "train", "step": state.step, "epoch": state.step / self.steps_per_epoch,
                          "loss": step_loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens / elapsed})

    def _validation_loss(self) -> float:
        """The training loss on the validation split: each process sums its share, then all are added."""
        loss_sum, tokens = loss_totals(self.model, self._val_batches(), self.device, self.precision, label_loss)
        totals = distributed.all_sum(torch.stack([loss_sum, tokens.double()]), self.dist)
        return loss_from_totals(float(totals[0]), int(totals[1]))["loss"]

    def _evaluate(self) -> None:
        state, patience = self.state, self.config.train.patience
        val_loss = self._validation_loss()
        improved = val_loss < state.best_loss
        if improved:
            state.best_loss, state.best_step, state.bad_evals = val_loss, state.step, 0
            self.best_weights = {k: v.detach().to("cpu", copy=True)
                                 for k, v in methods.trainable_state_dict(self.model).items()}
            self.run.save_best(self.best_weights)
        else:
            state.bad_evals += 1
            state.done = state.bad_evals >= patience
        self.run.log({"type": "eval", "step": state.step, "epoch": state.step / self.steps_per_epoch,
                      "val_loss": val_loss, "best_loss": state.best_loss, "improved": improved,
                      "early_stop": state.done and state.step < self.total_steps})
        self._save_last()

    # ----------------------------------------------------------------------------------------- state
    def _save_last(self) -> None:
        rng = rng_state(self.device)
        optimizer_tensors, optimizer_json = optimizer_to_safe(self.optimizer)
        state = {"trainer": asdict(self.state), "optimizer": optimizer_json, "scaler": self.scaler.state_dict(),
                 "world_size": self.dist.world_size, "peak_memory_mb": peak_memory_mb(self.device)}
        self.run.save_last(methods.trainable_state_dict(self.model), optimizer_tensors, rng, state)

    def _restore(self) -> None:
        weights, optimizer_tensors, rng, state = self.run.load_last(
            {f.name: str(f.type) for f in fields(TrainState)})
        methods.load_trainable_state_dict(self.model, weights)
        try:
            self.optimizer.load_state_dict(optimizer_from_safe(optimizer_tensors, state["optimizer"], self.optimizer))
        except (ValueError, KeyError) as error:
            raise MinisummError(f"The optimizer state in {self.run.path / 'last'} does not fit this run's "
                                f"parameters ({error}); this last/ checkpoint cannot be resumed.") from None
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.state = TrainState(**state["trainer"])
        self.state.done = False
        set_rng_state(rng, self.device)
        self.best_weights = self.run.load_best()

    def _interrupted(self, signum: int) -> dict:
        self._save_last()
        name = signal.Signals(signum).name
        message = (f"Interrupted by {name} at step {self.state.step}: saved {self.run.path / 'last'}; continue with "
                   f"python train.py --resume {self.run.path}")
        self.run.log({"type": "interrupted", "step": self.state.step, "signal": name})
        distributed.teardown(self.dist)
        return {"interrupted": name, "message": message, "step": self.state.step}

    def _summary(self) -> dict:
        state, n_params = self.state, sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.params)
        return {
            "method": self.config.method.method, "model": self.config.model.model,
            "trainable_params": trainable, "total_params": n_params, "trainable_share": trainable / n_params,
            "best_val_loss": state.best_loss, "best_step": state.best_step, "steps": state.step,
            "epochs": state.step / self.steps_per_epoch, "total_steps": self.total_steps,
            "stopped_early": state.step < self.total_steps, "train_time_s": state.train_time_s,
            "wall_time_s": self.run.wall_time(), "tokens_per_s": state.train_tokens / max(state.train_time_s, 1e-9),
            "peak_memory_mb": peak_memory_mb(self.device), "checkpoint_bytes": folder_size(self.run.path / "best"),
            "device": str(self.device), "precision": self.precision, "world_size": self.dist.world_size,
            "effective_batch": self.global_batch * self.config.train.grad_accum,
            "padding_fraction": self.padding_fraction,
        }


def optimizer_to_safe(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (for safetensors) and the rest (for JSON): no pickle."""
    full = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in full["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": full["param_groups"], "scalars": scalars}


def optimizer_from_safe(tensors: dict[str, torch.Tensor], saved: dict, optimizer) -> dict:
    state: dict[int, dict] = {}
    for name, value in [*tensors.items(), *saved["scalars"].items()]:
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": saved["param_groups"]}
