"""What train.py prints: a start banner, one line per validation, a short human summary; bars on a terminal only."""

import io
import json
import re

from minisumm.cli.train import main as train_main
from minisumm.errors import run_cli
from minisumm.tools.loading import load_model_and_tokenizer
from test_cli import SMALL

FLAGS = [*SMALL, "--method", "lora", "--max-steps", "4", "--eval-every", "2", "--log-every", "1"]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def records(run, kind):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


def test_banner_validation_lines_and_summary_agree_with_the_files(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(train_main, [*FLAGS, "--cache-dir", str(tmp_path / "cache"), "--out", str(run)]) == 0
    out = capsys.readouterr().out
    base, _ = load_model_and_tokenizer("tiny-random")
    total = sum(p.numel() for p in base.parameters()) + 4096  # LoRA r=8 on q, k, v of 2 blocks 64 wide
    assert f"trainable params: 4,096 || all params: {total:,} || trainable%: {100 * 4096 / total:.4f}" in out
    assert "examples: 24 train, 8 validation" in out and "batch 4 x 1 accumulated x 1 = 4 examples per step" in out
    evals = records(run, "eval")
    lines = [line for line in out.splitlines() if line.startswith("step ")]
    assert len(lines) == len(evals) == 3  # steps 0, 2 and 4
    for line, record in zip(lines, evals):
        assert line.startswith(f"step {record['step']}/4 ") and f"val loss {record['val_loss']:.4f}" in line
    trained = records(run, "train")
    step_2 = sum(r["loss"] for r in trained if r["step"] in (3, 4)) / 2  # the steps since the last validation
    assert f"train loss {step_2:.4f}" in lines[2]
    summary = json.loads((run / "summary.json").read_text())
    assert f"best val loss {summary['best_val_loss']:.4f} at step {summary['best_step']}" in out
    assert f"python evaluate.py {run}" in out and "peak memory" in out and "whole-process" in out
    assert not re.search(r"^\s*[{}\"]", out, re.M)  # no raw JSON dump: that is summary.json's job


def test_progress_bars_draw_on_a_terminal_only(tmp_path, capsys, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    drawing = [a for a in FLAGS if a != "--no-progress"]
    assert run_cli(train_main, [*drawing, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "a")]) == 0
    drawn = terminal.getvalue()
    assert "tokenise train:" in drawn and "validation:" in drawn and "train:" in drawn and "/4 [" in drawn

    monkeypatch.setattr("sys.stderr", Terminal())  # --no-progress: nothing drawn
    argv = [*FLAGS, "--cache-dir", str(tmp_path / "cache2"), "--out", str(tmp_path / "b")]
    assert "--no-progress" in argv and run_cli(train_main, argv) == 0
    assert sys_stderr_value() == ""

    monkeypatch.undo()  # capsys' stderr, a pipe rather than a terminal: no bars and no carriage returns
    capsys.readouterr()
    assert run_cli(train_main, [*drawing, "--cache-dir", str(tmp_path / "cache3"), "--out", str(tmp_path / "c")]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err + captured.out and "step 4/4" in captured.out


def sys_stderr_value() -> str:
    import sys

    return sys.stderr.getvalue()


def test_library_bars_follow_minisumm_s(monkeypatch):
    """transformers' "Loading weights" bar and datasets' bars: off into a pipe or with --no-progress."""
    import datasets
    from transformers.utils import logging as transformers_logging

    from minisumm.tools.console import library_bars

    try:
        transformers_logging.enable_progress_bar()  # as a fresh process has them (earlier tests may have run)
        datasets.enable_progress_bars()
        monkeypatch.setattr("sys.stderr", Terminal())
        library_bars(True)
        assert transformers_logging.is_progress_bar_enabled() and datasets.is_progress_bar_enabled()
        library_bars(False)  # --no-progress on a terminal
        assert not transformers_logging.is_progress_bar_enabled() and not datasets.is_progress_bar_enabled()
        transformers_logging.enable_progress_bar()
        monkeypatch.setattr("sys.stderr", io.StringIO())  # a pipe
        library_bars(True)
        assert not transformers_logging.is_progress_bar_enabled()
    finally:
        transformers_logging.enable_progress_bar()
        datasets.enable_progress_bars()
