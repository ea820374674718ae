"""--overwrite replaces only what minisumm wrote: never the user's data, notes, base model, the current folder
or the run being exported. Each refusal is one `error:` line, and every file that was there is still there."""

import json

import pytest

from conftest import tiny_config
from minisumm.tools import checkpoint
from minisumm.tools.atomic import write_json
from minisumm.errors import run_cli
from minisumm.tools.export import main as export_main
from minisumm.cli.train import main as train_main
from test_checkpoint import saved
from test_cli import SMALL


def snapshot(folder):
    """Every file under `folder` with its bytes: what must survive a refused --overwrite."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, argv, main=train_main) -> str:
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def fake_run(folder):
    """A folder laid out as train.py leaves one (config.json of a run, metrics.jsonl)."""
    folder.mkdir(parents=True)
    write_json(folder / "config.json", checkpoint.config_record(tiny_config("lora")))
    (folder / "metrics.jsonl").write_text('{"type": "start"}\n')


def test_a_folder_holding_the_training_data_is_never_deleted(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    rows = [{"article": f"Story {i} is long enough to train on.", "highlights": f"Story {i}."} for i in range(20)]
    (mine / "my.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (mine / "notes.txt").write_text("my notes")
    before = snapshot(mine)
    err = refused(capsys, [*SMALL, "--data", str(mine / "my.jsonl"), "--out", str(mine), "--overwrite"])
    assert "my.jsonl" in err and "input of this run" in err
    assert snapshot(mine) == before


def test_the_current_folder_and_its_parents_are_never_deleted(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work" / "sub"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text("my notes")
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)
    for out in (".", "..", str(tmp_path)):
        assert "current folder" in refused(capsys, [*SMALL, "--out", out, "--overwrite"])
    assert snapshot(tmp_path) == before


def test_a_run_folder_with_the_users_own_files_in_it_is_not_replaced(tmp_path, capsys):
    run = tmp_path / "run"
    fake_run(run)
    (run / "notes.txt").write_text("my notes")
    before = snapshot(run)
    assert "holds notes.txt, which minisumm did not write" in refused(capsys, [*SMALL, "--out", str(run), "--overwrite"])
    assert snapshot(run) == before


def test_a_base_model_folder_is_not_replaced(tmp_path, capsys):
    model = tmp_path / "gpt2-local"
    fake_run(model)  # even laid out like a run: it is this run's input
    before = snapshot(model)
    args = [*SMALL, "--out", str(model), "--overwrite"]
    args[args.index("tiny-random")] = str(model)
    assert "input of this run" in refused(capsys, args)
    assert snapshot(model) == before


@pytest.mark.slow
def test_overwrite_replaces_a_run_folder_and_evaluations_of_the_old_run_go(tmp_path, capsys):
    run = tmp_path / "run"
    fake_run(run)
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text("{}")
    assert run_cli(train_main, [*SMALL, "--cache-dir", str(tmp_path / "cache"), "--max-steps", "1",
                                "--out", str(run), "--overwrite"]) == 0
    assert (run / "last").is_dir() and not (run / "eval").exists()


def test_export_never_overwrites_the_run_it_exports_or_a_foreign_folder(tmp_path, capsys):
    folder, _ = saved(tmp_path, "lora")  # tmp_path/run/best
    run = folder.parent
    before = snapshot(run)
    for target in (run, folder):
        assert "input of this run" in refused(capsys, [str(run), "--to", "hf", str(target), "--overwrite"],
                                              export_main)
    assert snapshot(run) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("my notes")
    assert "has no minisumm_export.json" in refused(capsys, [str(run), "--to", "hf", str(other), "--overwrite"], export_main)
    assert (other / "notes.txt").read_text() == "my notes"


def test_export_overwrite_replaces_an_earlier_export(tmp_path, capsys):
    folder, _ = saved(tmp_path, "lora")
    out = tmp_path / "adapter"
    assert run_cli(export_main, [str(folder), "--to", "peft", str(out)]) == 0
    first = snapshot(out)
    assert run_cli(export_main, [str(folder), "--to", "hf", str(out), "--overwrite"]) == 0
    assert (out / "model.safetensors").is_file() and not (out / "adapter_model.safetensors").exists()
    assert first != snapshot(out) and not list(tmp_path.glob(".adapter*"))  # no lock or temporary left
