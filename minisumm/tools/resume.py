"""last/: what `--resume` needs to continue a run exactly where it stopped.

    last/weights.safetensors      the trainable tensors
    last/optimizer.safetensors    AdamW's moments (tensors), with the rest of its state in trainer_state.json
    last/rng.safetensors          the CPU (and CUDA) random generators
    last/trainer_state.json       the loop's TrainState, the GradScaler's state, world size, peak memory

Resuming restores all of it, so a resumed run ends bitwise equal to one never interrupted (on CPU; tested).
Nothing is pickled: tensors go to safetensors, the rest to JSON (`minisumm.tools.checkpoint`). Before any of
it is used, every part is checked (`RunFolder.load_last` for the files on their own, `check_fits` against
this run): a damaged or edited last/ is one sentence naming the file and the key, never a run that trains
nothing, never a traceback half way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields

import torch

from minisumm import distributed, methods
from minisumm.device import peak_memory_mb, rng_state, set_rng_state
from minisumm.errors import MinisummError, excerpt
from minisumm.tools.checkpoint import optimizer_from_safe, optimizer_to_safe

# AdamW settings that say where and how the step runs, not what it computes: they may change with --device.
DEVICE_SETTINGS = ("foreach", "capturable", "differentiable", "fused")


def save_last(t, run) -> None:
    """Weights, optimizer, RNG and loop state of `t` (a `minisumm.training.Training`) into `run`'s last/."""
    optimizer_tensors, optimizer_json = optimizer_to_safe(t.optimizer)
    state = {"trainer": asdict(t.state), "optimizer": optimizer_json, "scaler": t.scaler.state_dict(),
             "world_size": t.dist.world_size, "peak_memory_mb": peak_memory_mb(t.device)}
    run.save_last(methods.trainable_state_dict(t.model), optimizer_tensors, rng_state(t.device), state)


def restore(t, run) -> None:
    """Load `run`'s last/ into `t`: weights, optimizer, scaler, loop state, RNG, and the best weights so far."""
    weights, optimizer_tensors, rng, state = run.load_last({f.name: str(f.type) for f in fields(t.state)})
    check_fits(t, run, optimizer_tensors, state)
    methods.load_trainable_state_dict(t.model, weights)
    try:
        t.optimizer.load_state_dict(optimizer_from_safe(optimizer_tensors, state["optimizer"]))
    except (ValueError, KeyError) as error:
        raise MinisummError(f"The optimizer state in {run.path / 'last'} does not fit this run's parameters "
                            f"({error}); this last/ checkpoint cannot be resumed.") from None
    if state.get("scaler"):
        t.scaler.load_state_dict(state["scaler"])
    t.state = type(t.state)(**{**state["trainer"], "done": False})
    set_rng_state(rng, t.device)  # rank 0's, as only rank 0 saves: the others draw their own again
    if t.dist.rank:
        torch.manual_seed(distributed.dropout_seed(t.config.train.seed, t.dist.rank, t.state.step))
    t.best_weights = run.load_best()


def check_fits(t, run, optimizer_tensors: dict[str, torch.Tensor], state: dict) -> None:
    """`run`'s last/ against `t`: its step within the schedule, AdamW's settings those of the run's config (the
    learning rate aside, which the schedule sets every step), and a moment of each parameter's shape."""
    last = run.path / "last"

    def bad(where: str, why: str):
        raise MinisummError(f"{last}/{where} {why}; this last/ checkpoint cannot be resumed.")

    saved, world = state.get("world_size", 1), t.dist.world_size
    if saved != world:
        again = "python train.py" if saved == 1 else f"torchrun --nproc_per_node={saved} train.py"
        raise MinisummError(
            f"{last} was saved by a run of {saved} process{'es' * (saved > 1)} but this one has {world}: which "
            f"examples each step trains on and how many steps the schedule has depend on that number, so resume "
            f"it with {again} --resume {run.path}.")
    step = state["trainer"]["step"]
    if step > t.total_steps:
        bad("trainer_state.json: trainer.step", f"is {step:,}, beyond this run's schedule of {t.total_steps:,} "
            f"steps (if you lowered --max-steps or --epochs, give at least {step:,} steps)")
    fresh = t.optimizer.state_dict()["param_groups"]
    saved = state["optimizer"]["param_groups"]
    if len(saved) != len(fresh):
        bad("trainer_state.json: optimizer.param_groups", f"has {len(saved)} groups where this run's AdamW has "
            f"{len(fresh)}")
    for index, (group, ours) in enumerate(zip(saved, fresh)):
        key = f"trainer_state.json: optimizer.param_groups[{index}]"
        for name in sorted(set(group) ^ set(ours)):
            bad(f"{key}.{name}", "is missing" if name in ours else "is not an AdamW setting")
        for name, value in group.items():
            expected = list(ours[name]) if isinstance(ours[name], tuple) else ours[name]
            if name == "lr":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf
            elif name in DEVICE_SETTINGS:
                ok = value is None or isinstance(value, bool)
            else:
                ok = value == expected and isinstance(value, bool) == isinstance(expected, bool)
            if not ok:
                bad(f"{key}.{name}", f"is {excerpt(value)}, but this run's AdamW has {excerpt(expected)}")
    shapes = {index: param.shape for group, ours in zip(t.optimizer.param_groups, fresh)
              for index, param in zip(ours["params"], group["params"])}
    moments = {name: set() for name in ("step", "exp_avg", "exp_avg_sq")}
    for name, value in [*optimizer_tensors.items(), *state["optimizer"]["scalars"].items()]:
        index, _, kind = name.partition(".")
        where = f"optimizer.safetensors: {name!r}" if torch.is_tensor(value) else \
            f"trainer_state.json: optimizer.scalars.{name}"
        if kind not in moments or not index.isdigit() or int(index) not in shapes:
            bad(where, "is not AdamW state of this run's parameters")
        if torch.is_tensor(value):
            expected = () if kind == "step" else tuple(shapes[int(index)])
            if not value.is_floating_point() or tuple(value.shape) != expected:
                bad(where, f"has shape {tuple(value.shape)} ({value.dtype}) where this run's parameter needs "
                           f"{expected} (floating point)")
        elif kind != "step":
            bad(where, "should be a tensor in optimizer.safetensors")
        if kind == "step" and float(value) < 0:
            bad(where, f"is {float(value):g}, a negative step count")
        moments[kind].add(int(index))
    for kind, found in moments.items():
        for index in sorted(moments["step"] ^ found):
            bad(f"optimizer.safetensors: '{index}.{kind}'", "is missing" if index in moments["step"] else
                f"has no '{index}.step' beside it")
