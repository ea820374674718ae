"""The multi-process path on CPU (gloo): torchrun with 1 and 2 processes, under the device guard of guarded_train.py.

A GPU run differs in its backend (NCCL) and in what NCCL accepts: CUDA tensors only. The guard makes that
rule visible here: a tensor handed to a collective must be on the training device, and training code that
makes a tensor without naming its device gets a meta tensor instead of a CPU one.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minisumm import distributed
from minisumm.batching import batch_order
from test_training_wiring import varied_summaries

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--model", "tiny-random", "--data", "sample", "--train-size", "24", "--validation-size", "8",
         "--test-size", "6", "--max-length", "160", "--max-summary-tokens", "40", "--grad-accum", "1",
         "--no-progress", "--method", "lora", "--max-steps", "2", "--eval-every", "1", "--dropout", "0",
         "--no-group-by-length", "--lr", "1e-2", "--device", "cpu", "--lora-dropout", "0"]


def records(run, kind):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


def torchrun(processes: int, flags: list[str], tmp_path: Path, name: str, check: bool = True,
             **environment: str) -> list[dict]:
    """Train under torchrun through the guard (`environment`: more variables); return each rank's guard report."""
    reports = tmp_path / f"guard-{name}"
    reports.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "GUARD_REPORT_DIR": str(reports),
           **environment}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc_per_node={processes}", "tests/guarded_train.py", *flags],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("[rank") and "Error" in line]
    assert result.returncode == 0 or not check, "\n".join(errors) or result.stderr[-3000:]
    missing = [rank for rank in range(processes) if not (reports / f"rank{rank}.json").is_file()]
    assert not missing, f"ranks {missing} wrote no report:\n" + result.stderr[-3000:]
    return [json.loads((reports / f"rank{rank}.json").read_text()) for rank in range(processes)]


@pytest.mark.parametrize("method", ["lora", "prefix"])
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path, method):
    """torchrun with 2 CPU processes x batch 2 gives the losses and gradient norm of 1 process x batch 4, and
    one run folder; every collective on the way received a tensor on the training device. The summaries have
    different lengths, so the two processes' halves of a batch hold different label counts: only a loss
    divided by the label tokens of the whole step, on every process, gives the same gradient."""
    train_file, validation_file = varied_summaries(tmp_path)
    rows = [json.loads(line) for line in open(train_file)]
    first = batch_order([0] * len(rows), 4, seed=42, epoch=0, group_by_length=False)[0]
    labels = [sum(len(rows[i]["highlights"].encode()) + 1 for i in first[rank::2]) for rank in (0, 1)]
    assert labels[0] != labels[1], labels  # byte tokens: one label per byte, plus EOS
    common = [*SMALL, "--data", "", "--train-file", train_file, "--validation-file", validation_file,
              "--train-size", "all", "--validation-size", "all", "--max-summary-tokens", "128",
              "--cache-dir", str(tmp_path / "cache"), "--method", method,
              *(["--prefix-length", "4"] if method == "prefix" else [])]  # 160 positions: room for the article
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    single, double = tmp_path / "single", tmp_path / "double"
    subprocess.run([sys.executable, "train.py", *common, "--batch-size", "4", "--out", str(single)],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    reports = torchrun(2, [*common, "--batch-size", "2", "--out", str(double)], tmp_path, "double")
    assert [r["world_size"] for r in reports] == [2, 2] and all(r["collectives"] > 0 for r in reports)
    one, two = records(single, "train"), records(double, "train")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2]
    # before any update the two set-ups compute the same numbers up to float summation order; after an
    # update, Adam's first step (≈ lr · sign(g)) magnifies that noise on near-zero gradients a little
    assert two[0]["loss"] == pytest.approx(one[0]["loss"], rel=1e-5)
    assert two[0]["grad_norm"] == pytest.approx(one[0]["grad_norm"], rel=1e-5)
    assert two[1]["loss"] == pytest.approx(one[1]["loss"], rel=1e-3)
    (base_1, *after_1), (base_2, *after_2) = records(single, "eval"), records(double, "eval")
    assert base_2["val_loss"] == pytest.approx(base_1["val_loss"], rel=1e-5)
    for a, b in zip(after_1, after_2):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3)
    assert json.loads((double / "summary.json").read_text())["world_size"] == 2
    assert records(single, "start")[0]["process_group"] is None
    assert not list(tmp_path.glob("double*/double"))  # one run folder, written by rank 0 only


def test_torchrun_with_one_process_forms_a_process_group(tmp_path):
    """One process under torchrun joins a gloo group of one, runs its collectives and writes the run folder:
    what a one-GPU machine does with NCCL."""
    run = tmp_path / "run"
    (report,) = torchrun(1, [*SMALL, "--batch-size", "4", "--cache-dir", str(tmp_path / "cache"),
                             "--out", str(run)], tmp_path, "one")
    assert report == {"training_device": "cpu", "backend": "gloo", "world_size": 1,
                      "collectives": report["collectives"], "exit": 0, "gradient_as_bucket_view": True,
                      "from_cache": {"train": False, "validation": False}, "dropout_mask": report["dropout_mask"]}
    assert report["collectives"] >= 2 * 3 + 3  # three per step (tokens, loss, throughput), one per validation
    assert records(run, "start")[0]["process_group"] == "gloo"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["steps"] == 2
    assert (run / "best").is_dir() and (run / "last").is_dir()


def test_two_processes_fill_the_cache_once_draw_their_own_dropout_and_stop_together(tmp_path, capsys):
    """Rank 0 tokenises while rank 1 waits, then rank 1 reads the cache; the two draw different dropout masks; a
    SIGTERM that reaches rank 1 alone after step 1 stops both after step 1 (one all_reduce of the signal), with
    last/ saved; resuming that on one process is refused in one sentence, as its steps would take other data."""
    run = tmp_path / "run"
    flags = [*SMALL, "--batch-size", "2", "--max-steps", "4", "--eval-every", "2", "--dropout", "0.1",
             "--cache-dir", str(tmp_path / "cache"), "--out", str(run)]
    reports = torchrun(2, flags, tmp_path, "stop", check=False, GUARD_SIGNAL="1:1")
    assert [r["from_cache"] for r in reports] == [{"train": False, "validation": False},
                                                  {"train": True, "validation": True}]
    assert reports[0]["dropout_mask"] != reports[1]["dropout_mask"]
    assert [r["gradient_as_bucket_view"] for r in reports] == [True, True]
    assert [r["exit"] for r in reports] == [143, 143]  # both interrupted, by the signal only rank 1 received
    (stop,) = records(run, "interrupted")
    assert stop["step"] == 1 and stop["signal"] == "SIGTERM"
    assert json.loads((run / "last" / "trainer_state.json").read_text())["trainer"]["step"] == 1
    assert not (run / "summary.json").exists()

    from minisumm.cli.train import main as train_main
    from minisumm.errors import run_cli
    assert run_cli(train_main, ["--resume", str(run)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"error: {run / 'last'} was saved by a run of 2 processes but this one has 1: which examples "
                     f"each step trains on and how many steps the schedule has depend on that number, so resume "
                     f"it with torchrun --nproc_per_node=2 train.py --resume {run}.")


@pytest.mark.parametrize("environment, expected", [
    ({}, False),                                                # python train.py
    ({"WORLD_SIZE": "1"}, False),                               # a stray variable is not a launcher
    ({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}, True),  # torchrun --nproc_per_node=1
])
def test_launched_means_torchrun_set_rank_and_world_size(monkeypatch, environment, expected):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert distributed.launched() is expected


def test_a_lone_process_sums_nothing(monkeypatch):
    import torch

    monkeypatch.delenv("RANK", raising=False)
    info = distributed.setup(torch.device("cpu"))
    assert info == distributed.Dist() and not info.enabled and info.is_main
    value = torch.tensor([1.5, 2.0])
    assert distributed.all_sum(value, info) is value  # no group: the value itself, no collective
