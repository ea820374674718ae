"""Nothing lost, round two: --overwrite deletes only what minisumm wrote, one lock per real folder, no tool
overwrites a file another tool (or you) wrote, and a settings file never replaces a run by itself. Every
refusal is one `error:` line, before any work, and every file that was there is still there."""

import json
import shutil

import pytest

from minisumm.cli.evaluate import main as evaluate_main
from minisumm.cli.train import main as train_main
from minisumm.errors import MinisummError, run_cli
from minisumm.tools import compare, folder_lock
from minisumm.tools.export import MARKER
from minisumm.tools.export import main as export_main
from test_checkpoint import saved
from test_cli import SMALL
from test_compare import write_run
from test_overwrite import fake_run, refused, snapshot

QUICK = [*SMALL, "--method", "lora", "--max-steps", "1"]  # if a refusal failed, the run would end in seconds


def lead3_file(tmp_path):
    rows = [{"id": str(i), "article": f"Fact {i} here. Another fact. A third. A fourth.", "highlights": f"Fact {i}."}
            for i in range(3)]
    path = tmp_path / "mini.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# ---------------------------------------------------------------------------------------------- item 1
@pytest.mark.parametrize("foreign", [".git/config", ".notes", "eval/my-scores.txt", "best/README.md",
                                     "last/notes.txt", "tensorboard/notes.txt", "metrics.jsonl.bak"])
def test_overwrite_refuses_a_run_folder_holding_a_file_minisumm_did_not_write(tmp_path, capsys, foreign):
    run = tmp_path / "run"
    fake_run(run)
    (run / foreign).parent.mkdir(parents=True, exist_ok=True)
    (run / foreign).write_text("mine")
    before = snapshot(run)
    err = refused(capsys, [*QUICK, "--cache-dir", str(tmp_path / "cache"), "--out", str(run), "--overwrite"])
    shown = foreign.split("/")[0] if foreign.startswith(".git") else foreign
    assert f"holds {shown}, which minisumm did not write" in err
    assert snapshot(run) == before


def test_what_minisumm_writes_in_a_run_folder_is_recognised(tmp_path):
    from minisumm.tools.run_folder import foreign_entry

    run = tmp_path / "run"
    fake_run(run)
    for name in ("summary.json", ".eval.lock", ".summary.json.k2j_3h9a.tmp", "eval/metrics.json",
                 "eval/predictions.jsonl", "eval/.metrics.json.a1b2c3d4.tmp", "best/weights.safetensors",
                 "best/config.json", "last.old/trainer_state.json", ".last.tmp-x9y8z7w6/rng.safetensors",
                 "tensorboard/events.out.tfevents.1764320000.host.123.0"):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("")
    assert foreign_entry(run) is None
    (run / "eval" / "summary.json").write_text("")  # a run's file name, in the wrong folder
    assert foreign_entry(run) == "holds eval/summary.json, which minisumm did not write"


def test_export_overwrite_refuses_files_added_to_an_earlier_export(tmp_path, capsys):
    folder, _ = saved(tmp_path, "lora")
    out = tmp_path / "adapter"
    assert run_cli(export_main, [str(folder), "--to", "peft", str(out)]) == 0
    listed = json.loads((out / MARKER).read_text())["files"]
    assert "adapter_model.safetensors" in listed and MARKER in listed
    capsys.readouterr()
    for foreign, shown in ((".git/HEAD", ".git"), ("notes.txt", "notes.txt"), ("base_model/mine.txt", None)):
        (out / foreign).parent.mkdir(exist_ok=True)
        (out / foreign).write_text("mine")
        before = snapshot(out)
        err = refused(capsys, [str(folder), "--to", "hf", str(out), "--overwrite"], export_main)
        assert f"holds {shown or foreign}, which minisumm did not write" in err
        assert snapshot(out) == before
        shutil.rmtree(out / ".git") if shown == ".git" else (out / foreign).unlink()
    assert run_cli(export_main, [str(folder), "--to", "hf", str(out), "--overwrite"]) == 0  # its own files: replaced


# ---------------------------------------------------------------------------------------------- item 2
def test_a_symbolic_link_to_a_folder_takes_the_folders_own_lock(tmp_path):
    real = tmp_path / "runs" / "real"
    real.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    with folder_lock.hold(real):
        with pytest.raises(MinisummError, match="is being written by another process"):
            with folder_lock.hold(link):
                pass
    assert folder_lock.lock_path(link) == folder_lock.lock_path(real) == tmp_path / "runs" / ".real.lock"


# ---------------------------------------------------------------------------------------------- item 3
@pytest.mark.parametrize("name", ["summary.json", "config.json", "metrics.jsonl"])
def test_compare_never_overwrites_a_runs_own_file(tmp_path, capsys, name):
    run = tmp_path / "runs" / "lora-1"
    write_run(run, "lora", 294_912, 124_734_720)
    (run / "config.json").write_text('{"format_version": 1, "config": {}}')
    before = snapshot(run)
    err = refused(capsys, [str(run), "--out", str(run / name)], compare.main)
    assert f"would overwrite {run / name}, which compare did not write" in err
    assert snapshot(run) == before


def test_compare_replaces_its_own_report_and_plots_only(tmp_path, capsys, monkeypatch):
    run = tmp_path / "runs" / "lora-1"
    write_run(run, "lora", 294_912, 124_734_720)
    out = tmp_path / "runs" / "comparison.md"
    assert run_cli(compare.main, [str(run), "--out", str(out)]) == 0
    assert run_cli(compare.main, [str(run), "--out", str(out)]) == 0  # a rerun replaces its own files
    (tmp_path / "runs" / "comparison.csv").write_text("my,own\n1,2\n")
    capsys.readouterr()
    assert "comparison.csv, which compare did not write" in refused(capsys, [str(run), "--out", str(out)],
                                                                   compare.main)
    assert (tmp_path / "runs" / "comparison.csv").read_text() == "my,own\n1,2\n"


def test_a_plot_is_recognised_by_its_title_or_by_the_report_beside_it(tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "runs" / "lora-1"
    write_run(run, "lora", 294_912, 124_734_720)
    out = tmp_path / "runs" / "comparison.md"
    assert run_cli(compare.main, [str(run), "--out", str(out)]) == 0
    plot = out.with_name("comparison-rouge.png")
    assert compare.written_by_compare(plot, out)
    alone = tmp_path / "elsewhere" / "comparison-rouge.png"
    alone.parent.mkdir()
    alone.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # a PNG compare did not title, and no report beside
    assert not compare.written_by_compare(alone, alone.with_name("comparison.md"))
    (alone.parent / "comparison.md").write_text("# minisumm comparison\n")  # plots of an earlier minisumm
    assert compare.written_by_compare(alone, alone.with_name("comparison.md"))


@pytest.mark.parametrize("name, text", [("metrics.json", '{"my": "scores"}'), ("predictions.jsonl", "my notes\n")])
def test_evaluate_never_overwrites_results_it_did_not_write(tmp_path, capsys, name, text):
    out = tmp_path / "results"
    out.mkdir()
    (out / name).write_text(text)
    args = ["--baseline", "lead3", "--data", str(lead3_file(tmp_path)), "--out", str(out)]
    assert f"holds {name}, which evaluate.py did not write" in refused(capsys, args, evaluate_main)
    assert (out / name).read_text() == text and sorted(p.name for p in out.iterdir()) == [name]
    (out / name).unlink()
    assert run_cli(evaluate_main, args) == 0
    assert run_cli(evaluate_main, args) == 0  # its own results: replaced


# ---------------------------------------------------------------------------------------------- item 4
def test_overwrite_waits_for_no_evaluation_it_refuses_while_one_writes_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    fake_run(run)
    before = snapshot(run)
    with folder_lock.hold(run / "eval", "evaluation folder"):  # as evaluate.py holds it while it scores
        err = refused(capsys, [*QUICK, "--cache-dir", str(tmp_path / "cache"), "--out", str(run), "--overwrite"])
    assert f"{run / 'eval'} is being written by another process" in err
    assert snapshot(run) == before


# ---------------------------------------------------------------------------------------------- item 5
def test_a_settings_file_cannot_ask_for_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    fake_run(run)
    before = snapshot(run)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"out": str(run), "overwrite": True}))
    err = refused(capsys, [*QUICK, "--cache-dir", str(tmp_path / "cache"), "--config", str(settings)])
    assert "sets 'overwrite', which a settings file may not" in err and "--overwrite" in err
    assert snapshot(run) == before


# ---------------------------------------------------------------------------------------------- item 12
def test_the_root_folder_as_out_is_one_sentence(tmp_path, capsys):
    folder, _ = saved(tmp_path, "lora")
    for main, args in ((train_main, [*QUICK, "--out", "/"]),
                       (evaluate_main, ["--baseline", "lead3", "--data", str(lead3_file(tmp_path)), "--out", "/"]),
                       (export_main, [str(folder), "--to", "hf", "/"])):
        err = refused(capsys, args, main)
        assert "root of the file system" in err or "cannot be written" in err, err


# ---------------------------------------------------------------------------------------------- item 19
def test_overwrite_through_a_symbolic_link_is_refused_at_once(tmp_path, capsys):
    run = tmp_path / "run"
    fake_run(run)
    link = tmp_path / "link"
    link.symlink_to(run)
    before = snapshot(run)
    err = refused(capsys, [*QUICK, "--cache-dir", str(tmp_path / "cache"), "--out", str(link), "--overwrite"])
    assert f"will not replace {link}: it is a symbolic link (to {run})" in err
    assert "part of the old run" not in err and snapshot(run) == before and link.is_symlink()
