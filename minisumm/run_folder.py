"""The run folder: where one training run keeps its settings, checkpoints, log and summary.

    <out>/config.json   <out>/best/   <out>/last/   <out>/metrics.jsonl   <out>/summary.json

Only the main process writes. A non-empty folder is refused unless the run resumes it or the user asks
to overwrite it; checkpoint writes go through `checkpoint.save_checkpoint` (whole folder or nothing), and
a failed write (a full disk) is reported in one sentence with the previous checkpoint left intact.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from minisumm import checkpoint
from minisumm.config import RunConfig
from minisumm.errors import MinisummError


class RunFolder:
    """Checks the folder at once (before any work); `create()` writes it once model and data have loaded,
    so a run that fails to start leaves nothing behind and the run that --overwrite replaces is kept until then."""

    def __init__(self, path: Path, config: RunConfig, *, is_main: bool, resume: bool, overwrite: bool):
        self.path, self.config, self.is_main, self.overwrite = Path(path), config, is_main, overwrite
        self.started = time.time()
        self.previous_wall_s = 0.0
        if not is_main:  # only rank 0 checks and writes; the others would see the folder it just filled
            return
        if resume:
            if not (self.path / "last").is_dir() and not (self.path / "last.old").is_dir():
                raise MinisummError(f"Cannot resume {self.path}: it has no last/ checkpoint (was it written by "
                                    f"train.py, and did it reach its first evaluation?).")
            return
        if self.path.exists() and not self.path.is_dir():
            raise MinisummError(f"--out {self.path} is a file; give a folder for the run.")
        if self.path.exists() and any(self.path.iterdir()) and not overwrite:
            raise MinisummError(f"Run folder {self.path} is not empty; pass --resume {self.path} to continue it, "
                                f"--overwrite to replace it, or another --out.")

    def create(self) -> None:
        """Make the folder (replacing it with --overwrite) and write config.json, as the model built it
        (which may have capped `max_length` at its positions)."""
        if not self.is_main:
            return
        if self.overwrite and self.path.exists():
            shutil.rmtree(self.path)
        self._guard(lambda: self.path.mkdir(parents=True, exist_ok=True), "the run folder")
        self._guard(lambda: checkpoint.write_json(self.path / checkpoint.CONFIG,
                                                  checkpoint.config_record(self.config)), "config.json")

    def _guard(self, write, what: str) -> None:
        try:
            write()
        except OSError as error:
            raise MinisummError(f"Could not write {what} in {self.path} ({error.strerror or error}); the previous "
                                f"checkpoint there is intact: free some space or fix permissions, then "
                                f"--resume {self.path}.") from None

    def log(self, record: dict) -> None:
        if not self.is_main:
            return
        record = {"time": round(time.time(), 3), **record}
        self._guard(lambda: self._append(record), "metrics.jsonl")

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

    def load_last(self):
        folder = checkpoint.resolve(self.path / "last")
        weights = checkpoint.read_tensors(folder / checkpoint.WEIGHTS)
        optimizer_tensors = checkpoint.read_tensors(folder / "optimizer.safetensors")
        rng = checkpoint.read_tensors(folder / "rng.safetensors")
        try:
            state = json.loads((folder / "trainer_state.json").read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise MinisummError(f"{folder}/trainer_state.json is missing or corrupt ({error}); this last/ "
                                f"checkpoint cannot be resumed.") from None
        self.previous_wall_s = state.get("wall_time_s", 0.0)
        return weights, optimizer_tensors, rng, state

    def load_best(self) -> dict[str, torch.Tensor] | None:
        best = self.path / "best"
        if not (best / checkpoint.WEIGHTS).exists() and not (self.path / "best.old").is_dir():
            return None
        return checkpoint.read_tensors(checkpoint.resolve(best) / checkpoint.WEIGHTS)

    def write_summary(self, summary: dict) -> None:
        if self.is_main:
            self._guard(lambda: checkpoint.write_json(self.path / "summary.json", summary), "summary.json")

    def wall_time(self) -> float:
        return self.previous_wall_s + time.time() - self.started
