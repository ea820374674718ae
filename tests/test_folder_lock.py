"""One writer per folder, between real processes: a second writer is refused naming the first one's pid, and
the lock of a process killed with SIGKILL is taken over with a note."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minisumm.errors import run_cli
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.tools.export import main as export_main
from minisumm.tools import folder_lock
from minisumm.tools.folder_lock import lock_path
from minisumm.cli.train import main as train_main
from test_checkpoint import saved
from test_cli import SMALL

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
from pathlib import Path
from minisumm.tools.folder_lock import hold
with hold(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def wait_for_lock(folder: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until `process` has written its pid into the lock of `folder`."""
    deadline = time.monotonic() + timeout
    while f"pid {process.pid} " not in (lock_path(folder).read_text() if lock_path(folder).exists() else ""):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the other process never took the lock"
        time.sleep(0.05)


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds the lock of a folder until the test ends."""
    started = []

    def start(folder: Path) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
        started.append(process)
        wait_for_lock(folder, process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_a_second_training_is_refused_and_a_killed_ones_lock_is_taken_over(tmp_path, capsys):
    run = tmp_path / "run"
    flags = [*SMALL, "--method", "lora", "--cache-dir", str(tmp_path / "cache")]
    first = subprocess.Popen([sys.executable, "train.py", *flags, "--max-steps", "500", "--out", str(run)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        wait_for_lock(run, first)
        while not (run / "config.json").exists():  # until it has set up and written the run folder
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        for argv in ([*flags, "--max-steps", "2", "--out", str(run)], ["--resume", str(run)],
                     [*flags, "--max-steps", "2", "--out", str(run), "--overwrite"]):
            assert run_cli(train_main, argv) == 2
            assert f"being written by another process (pid {first.pid} " in one_error(capsys)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert lock_path(run).exists()  # SIGKILL left the lock file behind, but no process holds it

    assert run_cli(train_main, ["--resume", str(run), "--max-steps", "2", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"note: taking over the lock {lock_path(run)}, left by pid {first.pid} " in err
    assert (run / "summary.json").is_file() and not lock_path(run).exists()


def test_evaluate_and_export_are_refused_while_another_process_writes_their_folder(tmp_path, holder, capsys):
    folder, _ = saved(tmp_path, "lora")  # tmp_path/run/best
    run = folder.parent
    evaluating = holder(run / "eval")
    assert run_cli(evaluate_main, [str(run), "--limit", "1", "--max-new-tokens", "2"]) == 2
    assert f"pid {evaluating.pid} " in one_error(capsys) and not (run / "eval").exists()
    exporting = holder(tmp_path / "hf")
    assert run_cli(export_main, [str(run), "--to", "hf", str(tmp_path / "hf")]) == 2
    assert f"pid {exporting.pid} " in one_error(capsys) and not (tmp_path / "hf").exists()


def test_folders_made_for_the_lock_are_removed_when_nothing_was_written_in_them(tmp_path):
    with folder_lock.hold(tmp_path / "runs" / "deep" / "run"):
        assert (tmp_path / "runs" / "deep").is_dir()
    assert not (tmp_path / "runs").exists()  # a run that failed to start leaves no runs/ behind
    with folder_lock.hold(tmp_path / "runs" / "run"):
        (tmp_path / "runs" / "run").mkdir()
    assert (tmp_path / "runs" / "run").is_dir() and not list((tmp_path / "runs").glob(".*.lock"))
