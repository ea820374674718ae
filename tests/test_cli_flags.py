"""Flags made explicit: what --resume accepts and records, what it refuses, warnings for flags the method
ignores, and the smaller refusals (non-finite --lr, short usage, CSV headers, integer weights, leftovers)."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from minisumm.tools.checkpoint import load_checkpoint
from minisumm.tools.data_files import read_rows
from minisumm.errors import MinisummError, run_cli
from minisumm.cli.train import main as train_main
from test_checkpoint import saved
from test_cli import SMALL, records


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.slow
def test_resume_applies_loop_flags_records_them_and_refuses_the_others(tmp_path, capsys):
    run = tmp_path / "run"
    flags = [*SMALL, "--cache-dir", str(tmp_path / "cache"), "--eval-every", "1"]
    assert run_cli(train_main, [*flags, "--method", "prompt", "--lora-rank", "4", "--max-steps", "2",
                                "--out", str(run)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --lora-rank does nothing with --method prompt (it sets lora); it is ignored."]
    for argv, flag in ((["--method", "lora"], "--method"), (["--lr", "1"], "--lr"), (["--seed", "1"], "--seed"),
                       (["--out", str(tmp_path / "elsewhere")], "--out")):
        assert run_cli(train_main, ["--resume", str(run), *argv]) == 2
        assert one_error(capsys).startswith(f"error: {flag} cannot be changed when resuming")
    (run / ".last.tmp-left").mkdir()  # what a save killed half way leaves
    (run / ".best.tmp-left").mkdir()
    assert run_cli(train_main, ["--resume", str(run), "--max-steps", "4", "--patience", "9", "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 4
    assert [r["settings"] for r in records(run, "resume_overrides")] == [{"max_steps": 4, "patience": 9}]
    assert json.loads((run / "config.json").read_text())["config"]["train"]["max_steps"] == 4
    assert not list(run.glob(".*.tmp-*"))


@pytest.mark.parametrize("lr", ["inf", "nan", "-1"])
def test_non_finite_lr_is_refused_before_any_work(tmp_path, capsys, lr):
    assert run_cli(train_main, [*SMALL, "--lr", lr, "--out", str(tmp_path / "run")]) == 2
    assert "--lr must be a positive number" in one_error(capsys) and not (tmp_path / "run").exists()


def test_a_bad_flag_type_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        train_main(["--lr", "fast"])
    assert stop.value.code == 2
    assert one_error(capsys) == "error: argument --lr: invalid float value: 'fast' (see train.py --help)\n"


def test_a_fresh_run_on_a_read_only_out_is_not_told_to_resume(capsys, read_only_dir):
    assert run_cli(train_main, [*SMALL, "--out", str(read_only_dir / "run")]) == 2
    err = one_error(capsys)
    assert "cannot be written" in err and "--resume" not in err


def test_integer_weights_are_refused(tmp_path):
    folder, _ = saved(tmp_path, "lora")
    weights = load_file(folder / "weights.safetensors")
    save_file({k: v.to(torch.int64) for k, v in weights.items()}, folder / "weights.safetensors")
    with pytest.raises(MinisummError, match=r"as torch.int64, but trained weights are floating point"):
        load_checkpoint(folder)


def test_csv_with_a_repeated_column_or_no_header(tmp_path):
    twice = tmp_path / "twice.csv"
    twice.write_text("article,highlights,article\nA story.,Short.,Again.\n")
    with pytest.raises(MinisummError, match="names the column 'article' twice"):
        read_rows(twice)
    headless = tmp_path / "headless.csv"
    story = "The council met on Monday and agreed to rebuild the old bridge over the river by next spring."
    headless.write_text(f'"{story}","Bridge to be rebuilt."\n"{story}","Again."\n')
    with pytest.raises(MinisummError, match="seems to have no header row") as raised:
        read_rows(headless)
    assert story not in str(raised.value)
