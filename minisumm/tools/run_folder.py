"""The run folder: where one training run keeps its settings, checkpoints, log and summary.

    <out>/config.json   <out>/best/   <out>/last/   <out>/metrics.jsonl   <out>/summary.json   <out>/eval/

Only the main process writes, and train.py holds the folder's lock (`minisumm.tools.folder_lock`) meanwhile.
A non-empty folder is refused unless the run resumes it or the user asks to overwrite it, and
`--overwrite` replaces only a folder that is recognisably a minisumm run (`check_overwrite`): never the
current folder or one above it, never a folder holding the run's own data or base model. Checkpoint
writes go through `checkpoint.save_checkpoint` (whole folder or nothing), and a failed write (a full disk)
is reported in one sentence with the previous checkpoint left intact.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from minisumm.tools import checkpoint
from minisumm.tools.atomic import check_writable, write_json
from minisumm.config import RunConfig
from minisumm.errors import MinisummError, writing

# Everything train.py and evaluate.py put in a run folder (hidden names are temporary files and locks).
RUN_ENTRIES = {"config.json", "best", "last", "best.old", "last.old", "metrics.jsonl", "summary.json", "eval",
               "tensorboard"}


def check_overwrite(path: Path, inputs, recognised: bool, kind: str = "a run folder") -> None:
    """Refuse, in one sentence, to let --overwrite delete `path` unless it is safe: not the current folder
    or one above it, not a folder holding any of `inputs` (data files, the base model, the run being
    exported), and `recognised` as a folder minisumm wrote (`kind`, e.g. "a run folder")."""
    target, cwd = Path(path).resolve(), Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise MinisummError(f"--overwrite would delete {path}, which is the current folder or holds it; give "
                            f"{kind} a folder of its own.")
    for item in inputs:
        resolved = Path(item).expanduser().resolve()
        if resolved == target or target in resolved.parents:
            raise MinisummError(f"--overwrite would delete {path}, which holds {item}, an input of this run; "
                                f"choose another folder.")
    if not recognised:
        raise MinisummError(f"--overwrite only replaces {kind} written by minisumm, and {path} holds other "
                            f"files; move them away or choose another folder.")


def is_run_folder(path: Path) -> bool:
    """A minisumm run config.json, and nothing but what train.py and evaluate.py write beside it."""
    path = Path(path)
    try:
        record = json.loads((path / checkpoint.CONFIG).read_text())
        names = [entry.name for entry in path.iterdir()]
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and {"format_version", "config"} <= record.keys()
            and all(name in RUN_ENTRIES or name.startswith(".") for name in names))


def run_inputs(config: RunConfig) -> list[str]:
    """The local files and folders a run reads: its data files and a local base model."""
    d = config.data
    candidates = [d.data, d.train_file, d.validation_file, d.test_file, config.model.model]
    return [c for c in candidates if c and Path(c).expanduser().exists()]


def check_trainer_state(state, path: Path, trainer_fields: dict[str, str]) -> None:
    """trainer_state.json as `training.save_last` writes it, or one sentence naming the first bad key."""
    from minisumm.config import _has_type

    def bad(key: str, why: str):
        raise MinisummError(f"{path}: {key} {why}; this last/ checkpoint cannot be resumed.")

    if not isinstance(state, dict):
        bad("the file", "should hold a JSON object")
    for key, kind in (("trainer", dict), ("optimizer", dict)):
        if not isinstance(state.get(key), kind):
            bad(key, "is missing or not an object")
    for name, annotation in trainer_fields.items():
        if name not in state["trainer"]:
            bad(f"trainer.{name}", "is missing")
        if not _has_type(state["trainer"][name], annotation):
            bad(f"trainer.{name}", f"should be of type {annotation}, not {state['trainer'][name]!r}")
    if set(state["trainer"]) - set(trainer_fields):
        bad(f"trainer.{sorted(set(state['trainer']) - set(trainer_fields))[0]}", "is not a trainer setting")
    if state["trainer"]["step"] < 0:
        bad("trainer.step", "is negative")
    groups, scalars = state["optimizer"].get("param_groups"), state["optimizer"].get("scalars")
    if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("params"), list)
                                               for g in groups):
        bad("optimizer.param_groups", "should be a list of objects with 'params'")
    if not isinstance(scalars, dict) or not all(k.split(".", 1)[0].isdigit() and "." in k for k in scalars):
        bad("optimizer.scalars", "should map '<index>.<name>' to values")
    if state.get("scaler") is not None and not isinstance(state["scaler"], dict):
        bad("scaler", "should be an object")
    if not _has_type(state.get("wall_time_s", 0.0), "float"):
        bad("wall_time_s", "should be a number")


class RunFolder:
    """Checks the folder at once (before any work); `create()` writes it once model and data have loaded,
    so a run that fails to start leaves nothing behind and the run that --overwrite replaces is kept until then."""

    def __init__(self, path: Path, config: RunConfig, *, is_main: bool, resume: bool, overwrite: bool):
        self.path, self.config, self.is_main, self.overwrite = Path(path), config, is_main, overwrite
        self.resume = resume
        self.started = time.time()
        self.previous_wall_s = 0.0
        self.tensorboard = None  # a TensorBoardLog with --tensorboard (`open_tensorboard`)
        if not is_main:  # only rank 0 checks and writes; the others would see the folder it just filled
            return
        if resume:
            if not (self.path / checkpoint.CONFIG).is_file():
                raise MinisummError(f"Cannot resume {self.path}: it is not a run folder (no config.json).")
            check_writable(self.path, "--resume")
            return
        check_writable(self.path, "--out")
        if self.path.exists() and any(self.path.iterdir()):
            if not overwrite:
                raise MinisummError(f"Run folder {self.path} is not empty; pass --resume {self.path} to continue "
                                    f"it, --overwrite to replace it, or another --out.")
            check_overwrite(self.path, run_inputs(config), is_run_folder(self.path))

    def has_checkpoint(self) -> bool:
        """Has the run saved last/ (a run stopped before its first save has only config.json)?"""
        return (self.path / "last").is_dir() or (self.path / "last.old").is_dir()

    def create(self) -> None:
        """Write config.json, as the model built it (which may have capped `max_length` at its positions):
        for a new run, in a new folder (replacing the old one with --overwrite); when resuming, with the
        flags that steer the loop applied."""
        if not self.is_main:
            return
        if self.overwrite and not self.resume and self.path.exists():
            with writing(f"over {self.path}", "part of the old run may be left; delete it by hand"):
                shutil.rmtree(self.path)
        kept = "nothing was trained yet" if not self.resume else "its checkpoints are intact"
        with writing(f"the run folder {self.path}", kept):
            self.path.mkdir(parents=True, exist_ok=True)
            write_json(self.path / checkpoint.CONFIG, checkpoint.config_record(self.config))

    def _guard(self, write, what: str) -> None:
        with writing(f"{what} in {self.path}", f"the previous checkpoint there is intact: free some space or fix "
                                               f"permissions, then --resume {self.path}"):
            write()

    def open_tensorboard(self, resumed_at: int) -> None:
        """From now on, every logged record's scalars also go to <run>/tensorboard/ (main process only)."""
        if self.is_main:
            from minisumm.tools.tensorboard import TensorBoardLog
            self.tensorboard = TensorBoardLog(self.path, purge_step=resumed_at or None)

    def log(self, record: dict) -> None:
        """Append one record to metrics.jsonl (and TensorBoard, when open)."""
        if not self.is_main:
            return
        record = {"time": round(time.time(), 3), **record}
        self._guard(lambda: self._append(record), "metrics.jsonl")
        if self.tensorboard is not None:
            self.tensorboard.write(record)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    def _append(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as stream:
            stream.write(json.dumps(record) + "\n")

    def save_best(self, weights: dict[str, torch.Tensor]) -> None:
        if self.is_main:
            self._guard(lambda: checkpoint.save_checkpoint(self.path / "best", self.config, weights), "best/")

    def save_last(self, weights, optimizer_tensors, rng, state: dict) -> None:
        if not self.is_main:
            return
        state = {**state, "wall_time_s": self.wall_time()}
        self._guard(lambda: checkpoint.save_checkpoint(self.path / "last", self.config, weights,
                                                       {"optimizer": optimizer_tensors, "rng": rng}, state), "last/")

    def load_last(self, trainer_state_fields: dict[str, str]):
        """last/'s weights, optimizer tensors, RNG state and trainer_state.json, each checked; the "trainer"
        record must have exactly `trainer_state_fields` (name -> annotation, e.g. {"step": "int"})."""
        folder = checkpoint.resolve(self.path / "last")
        weights = checkpoint.read_tensors(folder / checkpoint.WEIGHTS)
        optimizer_tensors = checkpoint.read_tensors(folder / "optimizer.safetensors")
        rng = checkpoint.read_tensors(folder / "rng.safetensors")
        if "cpu" not in rng or rng["cpu"].dtype != torch.uint8:
            raise MinisummError(f"{folder}/rng.safetensors has no 'cpu' random-generator state; this last/ "
                                f"checkpoint cannot be resumed.")
        path = folder / "trainer_state.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise MinisummError(f"{path} is missing or corrupt ({error}); this last/ checkpoint cannot be "
                                f"resumed.") from None
        check_trainer_state(state, path, trainer_state_fields)
        self.previous_wall_s = state.get("wall_time_s", 0.0)
        return weights, optimizer_tensors, rng, state

    def load_best(self) -> dict[str, torch.Tensor] | None:
        best = self.path / "best"
        if not (best / checkpoint.WEIGHTS).exists() and not (self.path / "best.old").is_dir():
            return None
        return checkpoint.read_tensors(checkpoint.resolve(best) / checkpoint.WEIGHTS)

    def write_summary(self, summary: dict) -> None:
        if self.is_main:
            self._guard(lambda: write_json(self.path / "summary.json", summary), "summary.json")

    def wall_time(self) -> float:
        return self.previous_wall_s + time.time() - self.started
