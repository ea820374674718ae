"""End to end: train.py killed with SIGKILL in the middle of a checkpoint save, then evaluate and --resume.

A real train.py process is killed (SIGKILL, nothing runs after it) at a drawn save: before its new folder
is renamed into place, between moving the old one aside and moving the new one in, or just after. The run
folder must still evaluate, and `--resume` must end bitwise equal to a run that was never interrupted.
"""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from minisumm.errors import run_cli
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.cli.train import main as train_main
from test_cli import SMALL

ROOT = Path(__file__).resolve().parents[1]

# Runs train.py's main with the checkpoint swap patched to SIGKILL the process at save number `nth`.
KILL_DURING_SAVE = r"""
import os, signal, sys
from minisumm.tools import atomic
from minisumm.cli.train import main

point, nth = sys.argv[1], int(sys.argv[2])
real_swap, real_rename, saves = atomic.swap_in, os.rename, []

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def rename_then_die(src, dst):  # moves the old folder aside, then dies before the new one moves in
    real_rename(src, dst)
    die()

def swap(staging, folder):
    saves.append(folder)
    if len(saves) != nth:
        return real_swap(staging, folder)
    if point == "before":
        die()
    if point == "between":
        atomic.os.rename = rename_then_die
    real_swap(staging, folder)
    die()  # "after": the new folder is in place and the old one deleted

atomic.swap_in = swap
main(sys.argv[3:])
"""


def train_flags(tmp_path):
    return [*SMALL, "--method", "lora", "--cache-dir", str(tmp_path / "cache"), "--max-steps", "4",
            "--eval-every", "1", "--lr", "1e-2"]


def final_tensors(run: Path) -> dict:
    return {f"{folder}/{name}": tensor for folder in ("best", "last")
            for file in ("weights", "optimizer") if (run / folder / f"{file}.safetensors").exists()
            for name, tensor in load_file(run / folder / f"{file}.safetensors").items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reference")
    run = tmp_path / "run"
    assert run_cli(train_main, [*train_flags(tmp_path), "--out", str(run)]) == 0
    return final_tensors(run)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before", "between", "after"])
def test_sigkill_during_a_save_then_evaluate_and_resume_bitwise(tmp_path, uninterrupted, point, capsys):
    nth = random.Random(point).randint(3, 9)  # saves 1-2 are step 0's best/ and last/; 4 steps make 10 in all
    run = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, point, str(nth), *train_flags(tmp_path),
                             "--out", str(run), "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert killed.returncode == -9, f"save {nth} ({point}) was not reached: {killed.stderr[-2000:]}"
    if point == "between":
        assert any(p.name.endswith(".old") for p in run.iterdir())  # killed with only the old folder there

    assert run_cli(evaluate_main, [str(run), "--split", "validation", "--limit", "2", "--max-new-tokens", "2"]) == 0
    assert run_cli(train_main, ["--resume", str(run), "--no-progress"]) == 0
    assert "taking over the lock" in capsys.readouterr().err
    resumed = final_tensors(run)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), f"save {nth} ({point})"
    assert not [p for p in run.iterdir() if p.name.endswith(".old") or ".tmp-" in p.name]
