"""`minisumm COMMAND` and `python -m minisumm COMMAND`: the scripts' own mains behind one name."""

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minisumm import __version__
from minisumm.cli import main as console
from minisumm.cli.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]


def start_module(*args, cwd) -> subprocess.Popen:
    """`python -m minisumm ARGS` in a fresh interpreter, importing this checkout wherever it runs."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "minisumm", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_help_lists_every_command_once_with_one_line(capsys):
    assert console.main(["--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("usage: minisumm COMMAND")
    for name in console.COMMANDS:
        [line] = [line for line in lines if line.split()[:1] == [name]]
        assert len(line.split()) > 3  # a description follows the name
    assert console.main(["--version"]) == 0
    assert capsys.readouterr().out == f"minisumm {__version__}\n"


def test_every_command_names_a_module_with_a_main():
    for name, (module, _) in console.COMMANDS.items():
        assert callable(importlib.import_module(module).main), name


def test_an_unknown_or_missing_command_is_one_error_line(capsys):
    assert console.main(["evalute", "runs/x"]) == 2
    assert capsys.readouterr().err == ("error: unknown command 'evalute'; did you mean 'evaluate'? "
                                       "(see minisumm --help)\n")
    assert console.main(["--method", "lora"]) == 2  # flags before any command
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "choose one of train, evaluate, summarize, compare, export, pretrain" in err
    assert console.main([]) == 2
    assert capsys.readouterr().err.startswith("usage: minisumm COMMAND")


def test_train_help_is_train_py_s_own(capsys):
    with pytest.raises(SystemExit) as stop:
        console.main(["train", "--help"])
    assert stop.value.code == 0
    ours = capsys.readouterr().out
    with pytest.raises(SystemExit):
        train_main(["--help"])
    theirs = capsys.readouterr().out
    assert "--lora-rank" in ours and "--resume" in ours
    # the same flags and help; only the name in the usage line may differ ("minisumm train" or "train.py")
    assert ours.split("\n\n", 1)[1] == theirs.split("\n\n", 1)[1]


def test_evaluate_through_the_dispatcher_names_itself_and_keeps_exit_statuses(tmp_path, capsys):
    out = tmp_path / "lead3"
    assert console.main(["evaluate", "--baseline", "lead3", "--data", "sample", "--limit", "2", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["examples"] == 2
    capsys.readouterr()
    assert console.main(["evaluate", str(tmp_path / "no-run")]) == 2  # a MinisummError: run_cli's status
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    with pytest.raises(SystemExit) as stop:
        console.main(["evaluate", "--bogus"], prog="python -m minisumm")
    assert stop.value.code == 2
    assert "(see python -m minisumm evaluate --help)" in capsys.readouterr().err


@pytest.mark.slow  # three interpreters importing torch: about 5 s each, run side by side
def test_python_dash_m_minisumm_help_train_help_and_evaluate(tmp_path):
    out = tmp_path / "out"
    top, train, evaluate = (start_module("--help", cwd=tmp_path), start_module("train", "--help", cwd=tmp_path),
                            start_module("evaluate", "--baseline", "lead3", "--data", "sample", "--limit", "2",
                                         "--out", str(out), cwd=tmp_path))
    status, text, _ = finish(top)
    assert status == 0 and text.startswith("usage: python -m minisumm COMMAND")
    assert all(f"\n  {name} " in text for name in console.COMMANDS)
    status, text, _ = finish(train)
    assert status == 0 and "--method {prompt,prefix,lora,last-layers,full}" in text
    status, text, errors = finish(evaluate)
    assert status == 0, errors
    assert "rougeLsum" in text and "\r" not in text + errors  # a pipe gets no progress bars
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 2


def installed_script() -> Path | None:
    """The `minisumm` console script of this environment, or None where the package is not installed with it."""
    if not importlib.metadata.entry_points(group="console_scripts", name="minisumm"):
        return None
    beside = Path(sys.executable).parent / "minisumm"
    found = beside if beside.exists() else shutil.which("minisumm")
    return Path(found) if found else None


@pytest.mark.slow  # an interpreter importing torch: about 5 s
def test_the_installed_script_runs_a_command_and_returns_its_status(tmp_path):
    script = installed_script()
    if script is None:
        pytest.skip("minisumm is not installed with its console script (pip install -e . adds it)")
    result = subprocess.run([str(script), "evaluate", "--baseline", "lead3", "--limit", "0"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "error: --limit must be at least 1; got 0.\n"


@pytest.mark.parametrize("command", ["train", "evaluate", "summarize", "compare", "export", "pretrain"])
def test_every_command_names_itself_in_its_usage_line(command, capsys):
    with pytest.raises(SystemExit) as stop:
        console.main([command, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: minisumm {command} ")


@pytest.mark.parametrize("command, argv, typed, meant", [
    ("train", [], "--max_steps", "--max-steps"), ("evaluate", [], "--max_new_tokens", "--max-new-tokens"),
    ("summarize", [], "--no_repeat_ngram", "--no-repeat-ngram"), ("compare", [], "--x_axis", "--x-axis"),
    ("export", ["runs/x", "out", "--to", "hf"], "--over_write", "--overwrite"),
    ("pretrain", ["--out", "x"], "--block_size", "--block-size")])
def test_every_command_answers_a_misspelt_flag_with_the_one_meant(command, argv, typed, meant, capsys):
    with pytest.raises(SystemExit) as stop:  # refused while parsing: nothing is read or written
        console.main([command, *argv, typed, "1"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (f"error: unknown flag {typed}; did you mean {meant}? "
                                       f"(see minisumm {command} --help)\n")
