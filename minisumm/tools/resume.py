"""last/: what `--resume` needs to continue a run exactly where it stopped.

    last/weights.safetensors      the trainable tensors
    last/optimizer.safetensors    AdamW's moments (tensors), with the rest of its state in trainer_state.json
    last/rng.safetensors          the CPU (and CUDA) random generators
    last/trainer_state.json       the loop's TrainState, the GradScaler's state, world size, peak memory

Resuming restores all of it, so a resumed run ends bitwise equal to one never interrupted (on CPU; tested).
Nothing is pickled: tensors go to safetensors, the rest to JSON (`minisumm.tools.checkpoint`).
"""

from __future__ import annotations

from dataclasses import asdict, fields

from minisumm import methods
from minisumm.device import peak_memory_mb, rng_state, set_rng_state
from minisumm.errors import MinisummError
from minisumm.tools.checkpoint import optimizer_from_safe, optimizer_to_safe


def save_last(t) -> None:
    """Weights, optimizer, RNG and loop state into last/, for --resume."""
    optimizer_tensors, optimizer_json = optimizer_to_safe(t.optimizer)
    state = {"trainer": asdict(t.state), "optimizer": optimizer_json, "scaler": t.scaler.state_dict(),
             "world_size": t.dist.world_size, "peak_memory_mb": peak_memory_mb(t.device)}
    t.run.save_last(methods.trainable_state_dict(t.model), optimizer_tensors, rng_state(t.device), state)


def restore(t) -> None:
    """Load last/ into `t`: weights, optimizer, scaler, loop state, RNG, and the best weights so far."""
    weights, optimizer_tensors, rng, state = t.run.load_last({f.name: str(f.type) for f in fields(t.state)})
    methods.load_trainable_state_dict(t.model, weights)
    try:
        t.optimizer.load_state_dict(optimizer_from_safe(optimizer_tensors, state["optimizer"]))
    except (ValueError, KeyError) as error:
        raise MinisummError(f"The optimizer state in {t.run.path / 'last'} does not fit this run's parameters "
                            f"({error}); this last/ checkpoint cannot be resumed.") from None
    if state.get("scaler"):
        t.scaler.load_state_dict(state["scaler"])
    t.state = type(t.state)(**{**state["trainer"], "done": False})
    set_rng_state(rng, t.device)
    t.best_weights = t.run.load_best()
