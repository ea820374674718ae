"""The comparison report: hand-written run and baseline folders in; a short terminal table, the full Markdown
table, a CSV of every column (and PNGs) out.

No training here: each folder holds a summary.json, metrics.jsonl and eval/metrics.json written by hand, so
every expected cell below is worked out from those numbers, not produced by the code under test.
"""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from minisumm.tools import compare
from minisumm.errors import run_cli

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def rouge(r1, r2, rl, rlsum, spread=0.9):
    return {key: {"mean": v, "mid": v, "low": v - spread, "high": v + spread}
            for key, v in zip(("rouge1", "rouge2", "rougeL", "rougeLsum"), (r1, r2, rl, rlsum))}


def write_run(folder: Path, method: str, trainable: int, total: int, *, evaluated=True, val_losses=(7.0, 5.5, 5.0),
              device="cpu"):
    folder.mkdir(parents=True)
    summary = {"method": method, "trainable_params": trainable, "total_params": total,
               "trainable_share": trainable / total, "best_val_loss": min(val_losses), "steps": 50, "epochs": 2.0,
               "wall_time_s": 93.96, "train_time_s": 80.0, "tokens_per_s": 3165.78, "peak_memory_mb": 1245.07,
               "checkpoint_bytes": 18305, "device": device, "precision": "fp32"}
    (folder / "summary.json").write_text(json.dumps(summary))
    records = [{"type": "start", "total_steps": 50}]
    records += [{"type": "eval", "step": 25 * i, "epoch": float(i), "val_loss": v} for i, v in enumerate(val_losses)]
    records += [{"type": "train", "step": 25 * i, "epoch": float(i), "loss": v - 0.3} for i, v in enumerate(val_losses)
                if i]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if evaluated:
        write_eval(folder, {"loss": 4.98765, "perplexity": 146.6, "examples": 40,
                            "rouge": rouge(36.08, 15.04, 25.52, 33.33) | {"rouge1": {
                                "mean": 36.2, "mid": 36.08, "low": 35.24, "high": 36.97}}})


def write_eval(folder: Path, metrics: dict):
    (folder / "eval").mkdir(parents=True, exist_ok=True)
    (folder / "eval" / "metrics.json").write_text(json.dumps({"source": str(folder), **metrics}))


REAL_PYPLOT = compare._pyplot


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """runs/ with a LoRA run (evaluated), a prompt run (not evaluated), a lead-3 baseline and a stray file.
    Plots are off (drawing them takes seconds on a busy CPU) unless a test asks for `with_plots`."""
    monkeypatch.setattr(compare, "_pyplot", lambda: None)
    root = tmp_path / "runs"
    write_run(root / "lora-1", "lora", 294_912, 124_734_720)
    write_run(root / "prompt-1", "prompt", 15_360, 124_455_168, evaluated=False)
    (root / "baseline-lead3").mkdir()
    write_eval(root / "baseline-lead3", {"source": "lead3", "examples": 40, "rouge": rouge(40.3, 17.7, 25.0, 36.6)})
    (root / "notes.txt").write_text("not a run")
    return root


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown table in `text`."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]  # past header, align


def report_rows(folder: Path) -> list[list[str]]:
    return table_rows((folder / "comparison.md").read_text())


@pytest.fixture
def with_plots(runs, monkeypatch):
    monkeypatch.setattr(compare, "_pyplot", REAL_PYPLOT)


def cell(row, column):
    return row[compare.HEADER.index(column)]


def test_one_row_per_folder_baselines_first_then_fewest_trainable(runs):
    assert run_cli(compare.main, [str(p) for p in sorted(runs.iterdir())]) == 0
    rows = report_rows(runs)
    assert [row[0] for row in rows] == ["baseline-lead3", "prompt-1", "lora-1"]
    assert all(len(row) == len(compare.HEADER) for row in rows)


def test_cells_are_the_numbers_in_the_files(runs):
    compare.main([str(runs / "lora-1")])
    (lora,) = report_rows(runs)
    assert cell(lora, "Method") == "lora"
    assert cell(lora, "Trainable params") == "294,912 (0.236%)"  # 294912 / 124734720 = 0.2364%
    assert cell(lora, "Checkpoint") == "18 KB"  # 18305 / 1024 = 17.9
    assert cell(lora, "Steps (epochs)") == "50 (2.00)"
    assert cell(lora, "Wall time") == "1.6 min"  # 93.96 s
    assert cell(lora, "Tokens/s") == "3,166"
    assert cell(lora, "Peak memory") == "1.2 GB"  # 1245.07 MB / 1024
    assert cell(lora, "Best val loss") == "5.000"
    assert cell(lora, "Test loss") == "4.988"
    assert cell(lora, "Test examples") == "40"
    assert cell(lora, "ROUGE-1") == "36.1 [35.2, 37.0]"  # the bootstrap mid, not the mean 36.2
    assert cell(lora, "ROUGE-Lsum") == "33.3 [32.4, 34.2]"


def test_missing_numbers_are_dashes(runs):
    compare.main([str(runs / "prompt-1"), str(runs / "baseline-lead3")])
    baseline, prompt = report_rows(runs)
    assert cell(prompt, "Trainable params") == "15,360 (0.0123%)"
    assert cell(prompt, "Test loss") == cell(prompt, "ROUGE-Lsum") == cell(prompt, "Test examples") == "—"
    assert cell(baseline, "Method") == "lead3 (baseline)"
    for column in ("Trainable params", "Checkpoint", "Steps (epochs)", "Wall time", "Best val loss", "Test loss"):
        assert cell(baseline, column) == "—"
    assert cell(baseline, "ROUGE-Lsum") == "36.6 [35.7, 37.5]"


def test_stray_folders_are_skipped_with_one_line_each_and_plain_files_silently(runs, capsys):
    checkpoint = runs / "lora-1" / "best"  # holds a config.json too, but it is not a run folder
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    (runs / "commands.sh").write_text("#!/bin/sh\n")  # what run_all.py writes beside its runs
    argv = [runs / "notes.txt", runs / "commands.sh", runs / "lora-1", runs / "missing", checkpoint]
    assert run_cli(compare.main, [str(p) for p in argv]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note: skipped")]
    assert notes == [f"note: skipped {runs / 'missing'}: does not exist",
                     f"note: skipped {checkpoint}: not a run folder (no summary.json, metrics.jsonl or "
                     f"eval/metrics.json)"]
    assert [row[0] for row in report_rows(runs)] == ["lora-1"]


@pytest.mark.parametrize("argv", [[], ["notes.txt"]])
def test_no_runs_is_one_error_sentence(runs, capsys, argv):
    assert run_cli(compare.main, [str(runs / a) for a in argv]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: None of the") and "run or baseline folder" in err[-1]
    assert not (runs / "comparison.md").exists()


def test_markdown_file_written_in_the_common_parent_and_at_out(runs, tmp_path):
    compare.main([str(runs / "lora-1"), str(runs / "baseline-lead3")])
    written = (runs / "comparison.md").read_text()
    assert written.startswith("# minisumm comparison") and len(report_rows(runs)) == 2
    compare.main([str(runs / "lora-1"), "--out", str(tmp_path / "report" / "mine.md")])
    assert table_rows((tmp_path / "report" / "mine.md").read_text())[0][0] == "lora-1"


def test_unfinished_run_and_resumed_steps(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare, "_pyplot", lambda: None)
    run = tmp_path / "full-1"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {"method": {"method": "full"}}}))
    records = [{"type": "eval", "step": 0, "epoch": 0.0, "val_loss": 7.0},
               {"type": "eval", "step": 10, "epoch": 0.5, "val_loss": 9.0},  # lost to a crash, redone on resume
               {"type": "eval", "step": 10, "epoch": 0.5, "val_loss": 6.25}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"type": "ev')
    compare.main([str(run)])
    (row,) = table_rows((tmp_path / "comparison.md").read_text())
    assert row[:2] == ["full-1 (unfinished)", "full"]
    assert cell(row, "Best val loss") == "6.250" and cell(row, "Steps (epochs)") == "10 (0.50)"
    assert [r["val_loss"] for r in compare.read_entry(run).curve] == [7.0, 6.25]


def test_terminal_shows_the_key_columns_within_100_characters(runs, capsys):
    demo = runs / "demo"  # a name that does not say its method
    write_run(demo, "last-layers", 14_177_280, 124_439_808)
    compare.main([str(p) for p in sorted(runs.iterdir())])
    printed = capsys.readouterr().out
    assert len(compare.TERMINAL_COLUMNS) <= 7 and all(len(line) <= 100 for line in printed.splitlines())
    lines = printed.split("\n\n")[0].splitlines()  # the table; the peak-memory note follows a blank line
    assert lines[0].split("  ")[0] == "Run" and "ROUGE-L [95%]" in lines[0] and "Checkpoint" not in lines[0]
    rows = {line.split("  ")[0].strip(): line.split() for line in lines[2:]}
    assert set(rows) == {"baseline-lead3", "prompt-1", "lora-1", "demo (last-layers)"}
    # lora-1: 294,912 of 124,734,720 trainable, best val 5.0, 93.96 s, ROUGE-L 25.52 +- 0.9, 1245.07 MB
    assert rows["lora-1"][1:] == ["294,912", "(0.236%)", "5.000", "1.6", "min", "25.5", "[24.6,", "26.4]", "1.2", "GB"]
    assert rows["prompt-1"][-4:] == ["min", "—", "1.2", "GB"]  # not evaluated
    assert rows["baseline-lead3"][1:] == ["—", "—", "—", "25.0", "[24.1,", "25.9]", "—"]


def test_csv_beside_the_report_has_every_column_as_plain_numbers(runs):
    compare.main([str(p) for p in runs.iterdir()])
    with open(runs / "comparison.csv", newline="") as file:
        rows = {row["run"]: row for row in csv.DictReader(file)}
    # every column of the Markdown table has its plain counterpart(s)
    counterparts = {"Run": ["run"], "Method": ["method"], "Trainable params": ["trainable_params", "trainable_share"],
                    "Checkpoint": ["checkpoint_bytes"], "Steps (epochs)": ["steps", "epochs"],
                    "Wall time": ["wall_time_s"], "Tokens/s": ["tokens_per_s"], "Peak memory": ["peak_memory_mb"],
                    "Best val loss": ["best_val_loss"], "Test loss": ["test_loss"], "Test examples": ["test_examples"],
                    **{title: [f"{key}_{part}" for part in ("mid", "low", "high")]
                       for key, title in compare.ROUGE_COLUMNS},
                    **{title: [key] for key, title in compare.FACT_COLUMNS}}
    assert set(counterparts) == set(compare.HEADER)
    assert all(name in rows["lora-1"] for names in counterparts.values() for name in names)
    lora = rows["lora-1"]
    assert (lora["method"], lora["kind"], lora["device"]) == ("lora", "run", "cpu")
    assert int(lora["trainable_params"]) == 294_912 and float(lora["trainable_share"]) == 294_912 / 124_734_720
    assert float(lora["wall_time_s"]) == 93.96 and float(lora["peak_memory_mb"]) == 1245.07
    assert int(lora["checkpoint_bytes"]) == 18305 and int(lora["steps"]) == 50 and float(lora["epochs"]) == 2.0
    assert float(lora["best_val_loss"]) == 5.0 and float(lora["test_loss"]) == 4.98765
    assert [float(lora[f"rouge1_{part}"]) for part in ("mid", "low", "high")] == [36.08, 35.24, 36.97]
    assert rows["prompt-1"]["rougeL_mid"] == rows["baseline-lead3"]["trainable_params"] == ""
    assert float(rows["baseline-lead3"]["rougeLsum_mid"]) == 36.6
    assert "[comparison.csv](comparison.csv)" in (runs / "comparison.md").read_text()


@pytest.mark.parametrize("devices, says, not_says", [
    (["cpu"], ["peak resident set", "whole process", "clear_refs"], ["max_memory_allocated"]),
    (["cuda:0"], ["torch.cuda.max_memory_allocated", "tensors only"], ["resident"]),
    (["cpu", "cuda"], ["peak resident set", "torch.cuda.max_memory_allocated"], []),
], ids=["cpu", "cuda", "both"])
def test_footnote_says_what_peak_memory_measured_on_the_runs_device(tmp_path, capsys, monkeypatch, devices, says,
                                                                   not_says):
    monkeypatch.setattr(compare, "_pyplot", lambda: None)
    for i, device in enumerate(devices):
        write_run(tmp_path / "runs" / f"lora-{i}", "lora", 294_912, 124_734_720, device=device)
    compare.main([str(p) for p in (tmp_path / "runs").iterdir()])
    printed = " ".join(capsys.readouterr().out.split())  # the note is wrapped to the terminal's width
    report = (tmp_path / "runs" / "comparison.md").read_text()
    footnote = next(line for line in report.splitlines() if line.startswith("Peak memory: "))
    assert footnote in printed
    assert all(words in footnote for words in says) and not any(words in footnote for words in not_says)


def test_no_peak_memory_no_footnote(runs, capsys):
    compare.main([str(runs / "baseline-lead3")])
    assert "Peak memory:" not in capsys.readouterr().out + (runs / "comparison.md").read_text()


@pytest.mark.parametrize("value, expected", [(500, "500 B"), (18305, "18 KB"), (1.25 * 2**20, "1.2 MB"),
                                             (475 * 2**20, "475 MB"), (3 * 2**30, "3.0 GB")])
def test_format_bytes(value, expected):
    assert compare.format_bytes(value) == expected


@pytest.mark.parametrize("value, expected", [(8.44, "8.4 s"), (42.4, "42 s"), (210, "3.5 min"), (7560, "2.1 h")])
def test_format_seconds(value, expected):
    assert compare.format_seconds(value) == expected


@pytest.mark.parametrize("share, expected", [(15_360 / 124_439_808, "0.0123%"), (0.022, "2.20%"),
                                             (14_177_280 / 124_439_808, "11.4%"), (1.0, "100%")])
def test_format_percent(share, expected):
    assert compare.format_percent(share) == expected


def test_pngs_are_written_and_valid(runs, with_plots, capsys):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    compare.main([str(p) for p in runs.iterdir()])
    for name in ("comparison-loss.png", "comparison-rouge.png", "comparison-cost.png"):
        path = runs / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = imread(path).shape
        assert height > 100 and width > 100
        assert f"]({name})" in (runs / "comparison.md").read_text()
    # a rerun over runs/* meets its own report and plots, and says nothing about them
    compare.main([str(p) for p in runs.iterdir()])
    assert "note: skipped" not in capsys.readouterr().err  # notes.txt is a plain file: passed over silently


def test_without_matplotlib_plots_are_skipped_with_a_hint(runs, with_plots, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    assert run_cli(compare.main, [str(runs / "lora-1")]) == 0
    assert "pip install matplotlib" in capsys.readouterr().err
    assert (runs / "comparison.md").exists() and not list(runs.glob("*.png"))


def test_module_runs_as_a_script(runs):
    # a baseline alone has nothing to plot, which keeps this check quick even with matplotlib installed
    result = subprocess.run([sys.executable, "-m", "minisumm.tools.compare", str(runs / "baseline-lead3")], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.splitlines()[2].startswith("baseline-lead3  ")
    assert (runs / "comparison.md").is_file()


# ---------------------------------------------------------------------------- benchmarks/run_all.py, no training
def load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_all_user_flags_override_the_preset():
    run_all = load_run_all()
    from minisumm.cli.train import parser

    args = run_all.parser().parse_args(["--model", "tiny-random", "--data", "sample"])
    args.quick = True
    preset = parser().parse_args(run_all.train_flags(args, "lora", []))
    assert preset.lr == run_all.TINY_RANDOM_LR["lora"] and preset.max_length == 256
    mine = parser().parse_args(run_all.train_flags(args, "lora", ["--lr", "0.5", "--max-length", "300"]))
    assert mine.lr == 0.5 and mine.max_length == 300


@pytest.mark.parametrize("argv, message", [(["--methods", "lora,adapter"], "unknown names ['adapter']"),
                                           (["--train-args=--no-such-flag"], "--train-args holds flags"),
                                           (["--eval-args=--beams"], "--eval-args holds flags")])
def test_run_all_rejects_bad_flags_before_running_anything(tmp_path, capsys, argv, message):
    run_all = load_run_all()
    out = tmp_path / "cmp"
    assert run_cli(run_all.main, ["--model", "tiny-random", "--data", "sample", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("file, content, why", [
    ("eval/metrics.json", {"rouge": 5}, "rouge = 5, not an object of scores"),
    ("eval/metrics.json", {"rouge": {"rouge1": {"mid": "high"}}}, "rouge.rouge1"),
    ("eval/metrics.json", {"loss": "low"}, "loss = 'low', not a number"),
    ("summary.json", {"method": "lora", "steps": "many"}, "steps = 'many', not a whole number"),
], ids=["rouge-number", "rouge-text", "loss-text", "steps-text"])
def test_malformed_files_are_a_note_and_a_skip(runs, capsys, file, content, why):
    bad = runs / "bad"
    bad.mkdir()
    (bad / "eval").mkdir()
    (bad / file).write_text(json.dumps(content))
    assert run_cli(compare.main, [str(runs / "lora-1"), str(bad)]) == 0
    captured = capsys.readouterr()
    assert f"note: skipped {bad}: {file} has {why}" in captured.err
    assert [row[0] for row in report_rows(runs)] == ["lora-1"]


def test_out_folder_gets_the_report_and_plots_inside_and_read_only_out_is_one_line(
        runs, with_plots, tmp_path, capsys, read_only_dir):
    report = tmp_path / "report"
    report.mkdir()
    assert run_cli(compare.main, [str(runs / "lora-1"), "--out", str(report)]) == 0
    plots = [f"comparison-{name}.png" for name in ("cost", "loss", "rouge")] if importlib.util.find_spec(
        "matplotlib") else []
    assert sorted(p.name for p in report.iterdir()) == [*plots, "comparison.csv", "comparison.md"]  # plots: plot extra
    assert not list(tmp_path.glob("*.png"))  # nothing in the parent
    capsys.readouterr()
    assert run_cli(compare.main, [str(runs / "lora-1"), "--out", str(read_only_dir / "report.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out ") and err.count("\n") == 1
    assert not list(read_only_dir.iterdir())


def test_fact_scores_are_shown_as_percentages_and_kept_as_shares_in_the_csv(tmp_path):
    run = tmp_path / "runs" / "lora-2"
    write_run(run, "lora", 16_384, 1_137_408, evaluated=False)
    write_eval(run, {"loss": 2.0, "examples": 40, "rouge": rouge(60.0, 40.0, 55.0, 58.0),
                     "facts": {"copy_precision": 0.9876, "mentions": 300, "fact_recall": 0.7149,
                               "invented_facts": 0.0312, "reference_facts": 213, "prediction_facts": 250}})
    compare.main([str(run), "--out", str(tmp_path / "report.md")])
    (row,) = table_rows((tmp_path / "report.md").read_text())
    assert [cell(row, title) for _, title in compare.FACT_COLUMNS] == ["99%", "71%", "3%"]
    with open(tmp_path / "report.csv", newline="") as file:
        (values,) = csv.DictReader(file)
    assert [float(values[key]) for key, _ in compare.FACT_COLUMNS] == [0.9876, 0.7149, 0.0312]


def test_fact_scores_that_are_not_numbers_skip_the_folder_with_a_note(tmp_path, capsys):
    run = tmp_path / "lora-3"
    write_run(run, "lora", 16_384, 1_137_408, evaluated=False)
    write_eval(run, {"examples": 40, "rouge": rouge(60.0, 40.0, 55.0, 58.0), "facts": {"fact_recall": "high"}})
    assert run_cli(compare.main, [str(run), "--out", str(tmp_path / "r.md")]) == 2
    assert "eval/metrics.json facts has fact_recall = 'high', not a number" in capsys.readouterr().err
