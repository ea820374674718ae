"""Ctrl-C and SIGTERM before the training loop: one line, exit 130 / 143, and either no run folder (nothing had
happened) or one that `--resume` continues; a second signal stops at once, still without a traceback."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minisumm import training
from minisumm.errors import Interrupted, run_cli
from minisumm.tools.interrupt import raising
from minisumm.tools.folder_lock import lock_path
from minisumm.cli.train import main as train_main
from test_cli import SMALL
from test_overwrite import fake_run, snapshot

ROOT = Path(__file__).resolve().parents[1]


def flags(tmp_path, run):
    return [*SMALL, "--method", "lora", "--cache-dir", str(tmp_path / "cache"), "--max-steps", "2",
            "--out", str(run)]


def signal_during(monkeypatch, module, name, signals):
    """Send `signals` to this process when `module.name` is first called (then call the real one)."""
    real = getattr(module, name)
    sent = []

    def wrapper(*args, **kwargs):
        if not sent:
            sent.append(True)
            for sig in signals:
                os.kill(os.getpid(), sig)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def one_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err + captured.out, captured
    return captured.err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_model_loads_writes_nothing_and_keeps_the_run_it_would_replace(
        tmp_path, monkeypatch, capsys, sig):
    run = tmp_path / "run"
    signal_during(monkeypatch, training, "build", [sig])
    assert run_cli(train_main, flags(tmp_path, run)) == 128 + sig
    assert "while loading the model and data; nothing was written" in one_line(capsys)
    assert not run.exists() and not lock_path(run).exists()
    fake_run(run)  # an earlier run that --overwrite would replace: still whole after the stop
    before = snapshot(run)
    monkeypatch.undo()
    signal_during(monkeypatch, training, "build", [sig])
    assert run_cli(train_main, [*flags(tmp_path, run), "--overwrite"]) == 128 + sig
    assert snapshot(run) == before


def _library_with_a_bare_except(swallow: bool):
    """What multiprocess (imported by datasets) does around an import: a bare `except:` that catches the
    signal's exception and either goes on or fails with an error of its own."""
    try:
        os.kill(os.getpid(), signal.SIGTERM)
    except:  # noqa: E722 (the point of the test)
        if not swallow:
            raise ModuleNotFoundError("No module named 'version'")
    return "went on"


@pytest.mark.parametrize("swallow", [True, False], ids=["swallowed", "turned-into-another-error"])
def test_a_signal_that_a_library_catches_still_ends_set_up_as_an_interrupt(swallow):
    with pytest.raises(Interrupted) as stop:
        with raising():
            _library_with_a_bare_except(swallow)
    assert stop.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler found before is back


def test_an_error_in_set_up_without_a_signal_stays_that_error():
    with pytest.raises(ModuleNotFoundError):
        with raising():
            raise ModuleNotFoundError("No module named 'version'")
    with raising():
        pass  # and a quiet block ends quietly


@pytest.mark.parametrize("swallow", [True, False], ids=["swallowed", "turned-into-another-error"])
def test_train_ends_with_the_interrupt_line_when_a_library_caught_the_signal(tmp_path, monkeypatch, capsys, swallow):
    run = tmp_path / "run"
    real = training.build

    def build(*args, **kwargs):
        _library_with_a_bare_except(swallow)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "build", build)
    assert run_cli(train_main, flags(tmp_path, run)) == 143
    assert "while loading the model and data; nothing was written" in one_line(capsys)
    assert not run.exists() and not lock_path(run).exists()


def test_a_signal_during_the_step_0_validation_saves_a_resumable_run(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    signal_during(monkeypatch, training, "validation_loss", [signal.SIGTERM])
    assert run_cli(train_main, flags(tmp_path, run)) == 143
    out = capsys.readouterr().out
    assert "Interrupted by SIGTERM at step 0" in out and f"--resume {run}" in out
    assert json.loads((run / "last" / "trainer_state.json").read_text())["trainer"]["step"] == 0
    monkeypatch.undo()
    assert run_cli(train_main, ["--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 2


def test_a_second_signal_stops_at_once_and_resume_starts_the_run_from_step_0(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    signal_during(monkeypatch, training, "validation_loss", [signal.SIGINT, signal.SIGINT])
    assert run_cli(train_main, flags(tmp_path, run)) == 130
    assert f"Stopped by SIGINT; continue with: python train.py --resume {run}" in one_line(capsys)
    assert (run / "config.json").is_file() and not (run / "last").exists()  # stopped before its first save
    monkeypatch.undo()
    assert run_cli(train_main, ["--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 2


@pytest.mark.slow
def test_sigterm_to_a_real_train_process_while_it_sets_up(tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "train.py", *flags(tmp_path, run), "--no-progress"], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    while not lock_path(run).exists():  # the lock is taken just before the model loads
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143 and "Traceback" not in out + err, err
    assert "SIGTERM" in out + err
    if run.exists():  # the signal came after set-up: the folder must be one --resume continues
        assert run_cli(train_main, ["--resume", str(run), "--no-progress"]) == 0
