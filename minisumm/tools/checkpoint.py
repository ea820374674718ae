"""Checkpoints: the trainable weights only, in safetensors, with the run's settings in JSON.

    runs/lora-20261128-101500/
      config.json             everything needed to rebuild model and data (RunConfig + format version)
      best/                   weights.safetensors (trainable tensors only) + config.json
      last/                   the same + optimizer.safetensors, rng.safetensors, trainer_state.json
      metrics.jsonl, summary.json

Nothing here ever unpickles: tensors live in safetensors, settings and counters in JSON. A checkpoint
folder is written whole under a temporary name and then renamed into place, so a process killed at any
moment (or a full disk) leaves the previous checkpoint readable (`minisumm.tools.atomic.staged_folder`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from minisumm import __version__
from minisumm.tools import json_files
from minisumm.tools.atomic import staged_folder, write_json
from minisumm.config import RunConfig
from minisumm.errors import MinisummError

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
CHECKPOINT_NAMES = ("best", "last", "best.old", "last.old")  # checkpoint folders inside a run folder
PICKLE_NAMES = ("pytorch_model.bin", "weights.pt", "weights.pth", "model.pt", "checkpoint.pt", "adapter_model.bin")


# ---------------------------------------------------------------------------------------------- write
def config_record(config: RunConfig) -> dict:
    return {"format_version": FORMAT_VERSION, "minisumm_version": __version__, "config": config.to_dict()}


def save_checkpoint(folder: Path, config: RunConfig, weights: dict[str, torch.Tensor],
                    tensors: dict[str, dict[str, torch.Tensor]] | None = None,
                    state: dict | None = None) -> None:
    """Write `folder` whole or not at all.

    `weights` are the trainable tensors; `tensors` maps extra file stems (e.g. "optimizer") to more
    tensors; `state` is JSON-able trainer state. Everything goes into `folder.tmp-*` first; then the old
    folder moves aside, the new one moves in, and the old one is deleted.
    """
    folder = Path(folder)
    for leftover in folder.parent.glob(f".{folder.name}.tmp-*"):  # from a save that was killed half way
        shutil.rmtree(leftover, ignore_errors=True)
    with staged_folder(folder) as staging:
        save_file(_contiguous(weights), staging / WEIGHTS, metadata={"format": "pt", "method": config.method.method})
        for stem, group in (tensors or {}).items():
            save_file(_contiguous(group), staging / f"{stem}.safetensors")
        if state is not None:
            write_json(staging / "trainer_state.json", state)
        write_json(staging / CONFIG, config_record(config))


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------------- read
def resolve(path: str | Path) -> Path:
    """A run folder means its `best/`; a checkpoint folder means itself; `X.old` stands in for a lost `X`."""
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".old").is_dir():
        path = path.with_name(path.name + ".old")
    if not path.exists():
        raise MinisummError(f"{path} does not exist; give a run folder (runs/<name>) or a checkpoint folder "
                            f"(runs/<name>/best or runs/<name>/last).")
    if not path.is_dir():
        raise MinisummError(f"{path} is a file, not a checkpoint; give its run folder or checkpoint folder.")
    if not (path / WEIGHTS).exists():
        for name in ("best", "last"):
            candidate = path / name
            if not candidate.exists() and (path / f"{name}.old").is_dir():
                candidate = path / f"{name}.old"
            if (candidate / WEIGHTS).exists():
                return candidate
        pickles = [name for name in PICKLE_NAMES if (path / name).exists()]
        if pickles:
            raise MinisummError(f"{path} holds {pickles[0]}, a pickle file that minisumm never loads (unpickling "
                                f"can run arbitrary code); minisumm checkpoints are {WEIGHTS} + {CONFIG}.")
        raise MinisummError(f"{path} is not a minisumm checkpoint: it has no {WEIGHTS}, best/ or last/; give a run "
                            f"folder written by train.py or one of its best/ or last/ folders.")
    return path


def run_of(folder: Path) -> Path:
    """The run folder a `resolve`d checkpoint folder belongs to (a checkpoint outside a run: itself)."""
    folder = Path(folder)
    return folder.parent if folder.name in CHECKPOINT_NAMES else folder


def read_config(folder: Path) -> RunConfig:
    """The RunConfig stored in a checkpoint folder, refusing formats newer than this minisumm."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise MinisummError(f"{folder} has weights but no {CONFIG}, so the model cannot be rebuilt; copy the run's "
                            f"config.json into it.")
    try:
        record = json_files.read(path)
    except ValueError as error:
        raise MinisummError(f"{path} is not valid JSON ({error}); the checkpoint's config is corrupt.") from None
    if not isinstance(record, dict) or "config" not in record:
        raise MinisummError(f"{path} is not a minisumm checkpoint config (no 'config' section).")
    version = record.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise MinisummError(f"{path} was written in checkpoint format {version}, newer than this minisumm's "
                            f"{FORMAT_VERSION} (minisumm {__version__}); upgrade minisumm to load it.")
    config = RunConfig.from_dict(record["config"], source=str(path))
    try:
        config.validate()
    except MinisummError as error:
        raise MinisummError(f"{path} holds an invalid setting: {error}") from None
    return config


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning a truncated, corrupt or non-safetensors file, or one holding NaN or
    infinite values (weights that diverged, or a damaged file), into one sentence."""
    if not Path(path).is_file():
        raise MinisummError(f"{path} is missing; the checkpoint is incomplete.")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise MinisummError(f"{path} is not a readable safetensors file ({str(error)[:120]}); it is truncated, "
                            f"corrupt, or another format (minisumm never unpickles files).") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise MinisummError(f"{path} holds NaN or infinite values in {name!r}; the training that wrote it "
                                f"diverged or the file is damaged, so nothing computed from it would mean "
                                f"anything: use an earlier checkpoint or train again.")
    return tensors


def load_checkpoint(path: str | Path):
    """`(model, tokenizer, config)` ready for inference from a run folder or its `best/` or `last/`: the base
    model rebuilt from the stored config (`minisumm.model.build`), the trained weights loaded into it."""
    from minisumm import methods
    from minisumm.model import build
    from minisumm.tools.loading import load

    folder = resolve(path)
    config = read_config(folder)
    weights = read_tensors(folder / WEIGHTS)
    model, tokenizer, _, config = build(config, load)
    methods.load_trainable_state_dict(model, weights)
    return model.eval(), tokenizer, config


# ---------------------------------------------------------------------------------------------- optimizer
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


def optimizer_from_safe(tensors: dict[str, torch.Tensor], saved: dict) -> dict:
    """Rebuild an optimizer state dict from `optimizer_to_safe`'s two parts."""
    state: dict[int, dict] = {}
    for name, value in [*tensors.items(), *saved["scalars"].items()]:
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": saved["param_groups"]}
