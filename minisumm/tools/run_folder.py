"""The run folder: where one training run keeps its settings, checkpoints, log and summary.

    <out>/config.json   <out>/best/   <out>/last/   <out>/metrics.jsonl   <out>/summary.json   <out>/eval/

Only the main process writes, and train.py holds the folder's lock (`minisumm.tools.folder_lock`) meanwhile.
A non-empty folder is refused unless the run resumes it or the user asks to overwrite it, and
`--overwrite` replaces only a folder that holds nothing but what train.py and evaluate.py write
(`foreign_entry`, `check_overwrite`): never the current folder or one above it, never a folder holding the
run's own data or base model, never a symbolic link, never while evaluate.py is writing the run's eval/.
`--resume` reads last/ back and checks every field of it (`load_last`, `check_trainer_state`). Checkpoint
writes go through `checkpoint.save_checkpoint` (whole folder or nothing), and a failed write (a full disk)
is reported in one sentence with the previous checkpoint left intact.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from pathlib import Path

import torch

from minisumm.tools import checkpoint, folder_lock, json_files
from minisumm.tools.atomic import check_writable, write_json
from minisumm.config import RunConfig
from minisumm.errors import MinisummError, excerpt, writing

# Everything train.py and evaluate.py write in a run folder: its files, and its folders with what they hold.
RUN_FILES = {"config.json", "metrics.jsonl", "summary.json"}
CHECKPOINT_FILES = {checkpoint.CONFIG, checkpoint.WEIGHTS, "optimizer.safetensors", "rng.safetensors",
                    "trainer_state.json"}
EVAL_FILES = ("metrics.json", "predictions.jsonl")  # evaluate.py's results, in eval/ or its --out
RUN_FOLDERS = {**dict.fromkeys(checkpoint.CHECKPOINT_NAMES, CHECKPOINT_FILES), "eval": set(EVAL_FILES),
               "tensorboard": None}  # None: TensorBoard's event files, events.out.tfevents.*
# The hidden companions of an entry NAME: an atomic write's temporary file (.NAME.abc123.tmp), a staged
# checkpoint (.NAME.tmp-abc123, removed by the next save) and a lock (.NAME.lock).
COMPANION = re.compile(r"\.(?P<name>.+?)\.(lock|tmp-\w+|\w+\.tmp)")


def _written_here(entry: Path, files, folders=()) -> bool:
    """Is `entry` one of `files` (plain files) or `folders` by name and kind, or the hidden companion of one?"""
    companion = COMPANION.fullmatch(entry.name)
    if companion and companion.group("name") in {*files, *folders}:
        return True
    if entry.is_symlink():
        return False
    return (entry.name in files and entry.is_file()) or (entry.name in folders and entry.is_dir())


def foreign_entry(path: Path) -> str | None:
    """Why `path` is not purely a minisumm run folder ("holds notes.txt, which ..."), or None when it holds a
    run's config.json and nothing but what train.py and evaluate.py write, down to the files in best/, eval/."""
    path = Path(path)
    if not is_run_config(path / checkpoint.CONFIG):
        return "has no config.json of a minisumm run"
    for entry in sorted(path.iterdir()):
        if not _written_here(entry, RUN_FILES, RUN_FOLDERS):
            return f"holds {entry.name}, which minisumm did not write"
        if entry.name not in RUN_FOLDERS or COMPANION.fullmatch(entry.name):
            continue  # a file, or a staged checkpoint that the next save removes
        allowed = RUN_FOLDERS[entry.name]
        for inner in sorted(entry.iterdir()):
            ours = (inner.name.startswith("events.out.tfevents.") and inner.is_file() and not inner.is_symlink()
                    if allowed is None else _written_here(inner, allowed))
            if not ours:
                return f"holds {entry.name}/{inner.name}, which minisumm did not write"
    return None


def is_run_config(path: Path) -> bool:
    """Is `path` a run's config.json as train.py writes it?"""
    try:
        record = json_files.read(path)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and {"format_version", "config"} <= record.keys()


def check_overwrite(path: Path, inputs, foreign: str | None, kind: str = "a run folder") -> None:
    """Refuse, in one sentence, to let --overwrite delete `path` unless it is safe: not a symbolic link, not
    the current folder or one above it, not a folder holding any of `inputs` (data files, the base model,
    the run being exported), and holding only what minisumm wrote (`foreign`: why not, or None)."""
    if Path(path).is_symlink():
        raise MinisummError(f"--overwrite will not replace {path}: it is a symbolic link (to "
                            f"{Path(path).resolve()}); give the folder itself.")
    target, cwd = Path(path).resolve(), Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise MinisummError(f"--overwrite would delete {path}, which is the current folder or holds it; give "
                            f"{kind} a folder of its own.")
    for item in inputs:
        resolved = Path(item).expanduser().resolve()
        if resolved == target or target in resolved.parents:
            raise MinisummError(f"--overwrite would delete {path}, which holds {item}, an input of this run; "
                                f"choose another folder.")
    if foreign:
        raise MinisummError(f"--overwrite only replaces {kind} written by minisumm, and {path} {foreign}; move "
                            f"it away or choose another folder.")


def check_no_evaluation(run: Path) -> None:
    """Refuse while evaluate.py writes `run`/eval (it holds that folder's lock): its scores would be the
    old checkpoint's, written into the new run."""
    with folder_lock.hold(Path(run) / "eval", "evaluation folder"):
        pass


def run_inputs(config: RunConfig) -> list[str]:
    """The local files and folders a run reads: its data files and a local base model."""
    d = config.data
    candidates = [d.data, d.train_file, d.validation_file, d.test_file, config.model.model]
    return [c for c in candidates if c and Path(c).expanduser().exists()]


# GradScaler.state_dict()'s keys (empty when the scaler is off) and the range each value must lie in.
SCALER_RANGES = {"scale": (0, math.inf), "growth_factor": (1, math.inf), "backoff_factor": (0, 1),
                 "growth_interval": (1, math.inf), "_growth_tracker": (0, math.inf)}


def check_trainer_state(state, path: Path, trainer_fields: dict[str, str]) -> None:
    """trainer_state.json as `resume.save_last` writes it, every field in its range, or one sentence naming
    the first bad key. `trainer_fields` are TrainState's (name -> annotation, e.g. {"step": "int"}); a
    `best_loss` of null (no finite validation loss yet) is read as infinity. What depends on the run (the
    step against its schedule, AdamW's settings and tensors) is checked by `resume.restore`."""
    from minisumm.config import has_type

    def bad(key: str, why: str):
        raise MinisummError(f"{path}: {key} {why}; this last/ checkpoint cannot be resumed.")

    def number(key: str, value, low: float, high: float = math.inf, whole: bool = False, empty: bool = False):
        if value is None and empty:
            return
        if not has_type(value, "int" if whole else "float") or not low <= value <= high:
            span = f"from {low:g} to {high:g}" if high < math.inf else f"{low:g} or more"
            bad(key, f"should be a {'whole ' if whole else ''}number {span}, not {excerpt(value)}")

    if not isinstance(state, dict):
        bad("the file", "should hold a JSON object")
    for key in ("trainer", "optimizer"):
        if not isinstance(state.get(key), dict):
            bad(key, "is missing or not an object")
    trainer = state["trainer"]
    if trainer.get("best_loss", 0) is None:
        trainer["best_loss"] = math.inf  # written as null: no finite validation loss yet
    for name, annotation in trainer_fields.items():
        if name not in trainer:
            bad(f"trainer.{name}", "is missing")
        if not has_type(trainer[name], annotation):
            bad(f"trainer.{name}", f"should be of type {annotation}, not {excerpt(trainer[name])}")
    if set(trainer) - set(trainer_fields):
        bad(f"trainer.{sorted(set(trainer) - set(trainer_fields))[0]}", "is not a trainer setting")
    for name in ("step", "bad_evals", "train_tokens"):
        number(f"trainer.{name}", trainer[name], 0, whole=True)
    number("trainer.best_step", trainer["best_step"], 0, trainer["step"], whole=True)
    if trainer["best_loss"] != math.inf:
        number("trainer.best_loss", trainer["best_loss"], 0)
    number("trainer.train_time_s", trainer["train_time_s"], 0)
    number("wall_time_s", state.get("wall_time_s", 0.0), 0)
    number("world_size", state.get("world_size", 1), 1, whole=True)
    number("peak_memory_mb", state.get("peak_memory_mb"), 0, empty=True)
    scaler = state.get("scaler")
    if scaler is not None and not isinstance(scaler, dict):
        bad("scaler", "should be an object")
    if scaler:  # {} when the GradScaler is off (fp32, bf16)
        for key in sorted(set(scaler) ^ set(SCALER_RANGES)):
            bad(f"scaler.{key}", "is missing" if key in SCALER_RANGES else "is not a GradScaler setting")
        for key, (low, high) in SCALER_RANGES.items():
            number(f"scaler.{key}", scaler[key], low, high, whole=key in ("growth_interval", "_growth_tracker"))
        if not 0 < scaler["backoff_factor"] < 1 or scaler["scale"] == 0:
            bad("scaler", "has a scale of 0 or a backoff_factor of 0 or 1")
    groups, scalars = state["optimizer"].get("param_groups"), state["optimizer"].get("scalars")
    if not isinstance(groups, list) or not groups or not all(
            isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
        bad("optimizer.param_groups", "should be a list of objects with 'params'")
    for index, group in enumerate(groups):
        if not all(has_type(i, "int") and i >= 0 for i in group["params"]):
            bad(f"optimizer.param_groups[{index}].params", "should list parameter numbers")
    if not isinstance(scalars, dict) or not all(k.split(".", 1)[0].isdigit() and "." in k for k in scalars):
        bad("optimizer.scalars", "should map '<index>.<name>' to values")
    for key, value in scalars.items():
        number(f"optimizer.scalars.{key}", value, -math.inf)


def check_rng(rng: dict[str, torch.Tensor], path: Path) -> None:
    """rng.safetensors as `device.rng_state` writes it: a CPU generator state torch accepts (tried on a
    copy of the generator), and a CUDA one of bytes when there is one."""
    def bad(key: str, why: str):
        raise MinisummError(f"{path}: {key} {why}; this last/ checkpoint cannot be resumed.")

    for key in sorted(set(rng) - {"cpu", "cuda"}):
        bad(repr(key), "is not a random-generator state minisumm saves")
    if "cpu" not in rng:
        bad("'cpu'", "is missing")
    for key, state in rng.items():
        if state.dtype != torch.uint8 or state.ndim != 1:
            bad(repr(key), f"should be a 1-D tensor of bytes, not {state.dtype} of shape {tuple(state.shape)}")
    with torch.random.fork_rng(devices=[]):
        try:
            torch.set_rng_state(rng["cpu"])
        except RuntimeError as error:
            bad("'cpu'", f"is not a valid generator state ({str(error)[:80]})")


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
            self._check_overwrite()

    def _check_overwrite(self) -> None:
        check_overwrite(self.path, run_inputs(self.config), foreign_entry(self.path))
        check_no_evaluation(self.path)

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
            # checked again: files may have appeared, or an evaluation started, while the model loaded
            with folder_lock.hold(self.path / "eval", "evaluation folder"):
                check_overwrite(self.path, run_inputs(self.config), foreign_entry(self.path))
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
            stream.write(json_files.dumps(record) + "\n")

    def save_best(self, weights: dict[str, torch.Tensor], config=None) -> None:
        """best/: `weights` with `config` (the run's own unless given: a folded prefix's differs)."""
        if self.is_main:
            self._guard(lambda: checkpoint.save_checkpoint(self.path / "best", config or self.config, weights),
                        "best/")

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
        rng, state = self.read_state(trainer_state_fields)
        weights = checkpoint.read_tensors(folder / checkpoint.WEIGHTS)
        optimizer_tensors = checkpoint.read_tensors(folder / "optimizer.safetensors")
        self.previous_wall_s = state.get("wall_time_s", 0.0)
        return weights, optimizer_tensors, rng, state

    def read_state(self, trainer_state_fields: dict[str, str]) -> tuple[dict[str, torch.Tensor], dict]:
        """last/'s RNG state and trainer_state.json, checked: cheap enough to read before the model loads."""
        folder = checkpoint.resolve(self.path / "last")
        rng = checkpoint.read_tensors(folder / "rng.safetensors")
        check_rng(rng, folder / "rng.safetensors")
        path = folder / "trainer_state.json"
        try:
            state = json_files.read(path)
        except (OSError, ValueError) as error:
            raise MinisummError(f"{path} is missing or corrupt ({error}); this last/ checkpoint cannot be "
                                f"resumed.") from None
        check_trainer_state(state, path, trainer_state_fields)
        return rng, state

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
