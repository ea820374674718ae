"""evaluate.py and summarize: baselines, the real CNN/DM sample, and bad checkpoints in one sentence."""

import errno
import io
import json
import os

import pytest
from rouge_score import rouge_scorer

from minisumm.config import DataConfig
from minisumm.data import load_file
from minisumm.cli import evaluate as evaluate_cli, summarize
from minisumm.errors import run_cli
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.metrics import lead3, split_sentences
from minisumm.cli.summarize import main as summarize_main
from test_checkpoint import saved


def test_lead3_on_real_cnndm_sample_matches_rouge_score_directly(shared_dir, tmp_path):
    data = shared_dir / "data" / "cnndm-test-sample20.jsonl"
    out = tmp_path / "lead3"
    assert run_cli(evaluate_main, ["--baseline", "lead3", "--data", str(data), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    examples = load_file(data, DataConfig())
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    direct = [scorer.score(e.summary, "\n".join(split_sentences(lead3(e.article)))) for e in examples]
    assert metrics["examples"] == len(examples) == 20
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        mean = 100 * sum(s[key].fmeasure for s in direct) / len(direct)
        assert metrics["rouge"][key]["mean"] == pytest.approx(mean, abs=1e-9)
        assert metrics["rouge"][key]["low"] <= metrics["rouge"][key]["mid"] <= metrics["rouge"][key]["high"]
    # lead-3 on CNN/DM is in the high 30s for ROUGE-1 (40.34 on the full test set, See et al. 2017)
    assert 25 < metrics["rouge"]["rouge1"]["mean"] < 55
    assert metrics["rouge"]["rougeLsum"]["mean"] > metrics["rouge"]["rougeL"]["mean"]


def test_zero_shot_baseline_runs_the_untrained_model(tmp_path):
    out = tmp_path / "zero"
    assert run_cli(evaluate_main, ["--baseline", "zero-shot", "--model", "tiny-random", "--data", "sample",
                                   "--limit", "3", "--max-new-tokens", "6", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["examples"] == 3 and metrics["loss"] > 0 and "rougeLsum" in metrics["rouge"]


def test_checkpoint_whose_base_model_cannot_be_loaded(tmp_path, capsys):
    folder, _ = saved(tmp_path)
    record = json.loads((folder / "config.json").read_text())
    record["config"]["model"]["model"] = str(tmp_path / "gone" / "model")
    (folder / "config.json").write_text(json.dumps(record))
    assert run_cli(evaluate_main, [str(folder)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1


def test_corrupt_weights_and_other_size_through_the_cli(tmp_path, capsys):
    folder, _ = saved(tmp_path, "prompt")
    (folder / "weights.safetensors").write_bytes(b"\x00" * 10)
    assert run_cli(evaluate_main, [str(folder)]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err


def test_summarize_a_file_and_stdin(tmp_path, capsys, monkeypatch):
    folder, _ = saved(tmp_path, "lora")
    article = tmp_path / "article.txt"
    article.write_text("The mayor of Eastholm opened a new library on Friday. It has 4,000 books.")
    assert run_cli(summarize_main, [str(folder), str(article), "--max-new-tokens", "8"]) == 0
    from_file = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(article.read_bytes()), encoding="utf-8"))
    assert run_cli(summarize_main, [str(folder), "-", "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out == from_file  # greedy: the same text gives the same summary
    article.write_text("   \n")
    assert run_cli(summarize_main, [str(folder), str(article)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_undecodable_stdin_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    folder, _ = saved(tmp_path, "lora")
    noise = os.urandom(5000) + b"\xff\xfe"  # \xff never occurs in UTF-8
    # as Python reads a pipe in the C locale: undecodable bytes become surrogates instead of an error
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(noise), encoding="utf-8", errors="surrogateescape"))
    monkeypatch.setattr(summarize, "load_checkpoint", lambda *a: pytest.fail("the model was loaded"))
    assert run_cli(summarize_main, [str(folder), "-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Standard input is not UTF-8 text") and err.count("\n") == 1


def test_an_unwritable_out_is_refused_before_decoding(tmp_path, capsys, monkeypatch, read_only_dir):
    folder, _ = saved(tmp_path, "lora")
    monkeypatch.setattr(evaluate_cli, "load_checkpoint", lambda *a: pytest.fail("the model was loaded"))
    (tmp_path / "a-file").write_text("mine")
    for out in (tmp_path / "a-file", read_only_dir, read_only_dir / "eval"):
        assert run_cli(evaluate_main, [str(folder), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --out {out} ") and err.count("\n") == 1
    assert (tmp_path / "a-file").read_text() == "mine"


def test_a_late_write_failure_keeps_the_predictions_in_a_folder_it_names(tmp_path, capsys, monkeypatch):
    folder, _ = saved(tmp_path, "lora")
    out = tmp_path / "eval"
    real = evaluate_cli.write_text

    def full_disk_in_out(path, text):  # the disk of --out fills up while decoding
        if out in path.parents:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, text)

    monkeypatch.setattr(evaluate_cli, "write_text", full_disk_in_out)
    assert run_cli(evaluate_main, [str(folder), "--split", "validation", "--limit", "2", "--max-new-tokens", "3",
                                   "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1
    rescue = next(word for word in err.split() if "minisumm-eval-" in word)
    lines = open(os.path.join(rescue, "predictions.jsonl")).read().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["prediction"] is not None
    assert json.load(open(os.path.join(rescue, "metrics.json")))["examples"] == 2


def test_limit_must_be_positive_and_no_best_says_it_evaluates_last(tmp_path, capsys):
    folder, _ = saved(tmp_path, "lora")
    for limit in ("0", "-1"):
        assert run_cli(evaluate_main, [str(folder), "--limit", limit]) == 2
        assert "--limit must be at least 1" in capsys.readouterr().err
    folder.rename(folder.with_name("last"))  # a run stopped before its first best/ save
    assert run_cli(evaluate_main, [str(folder.parent), "--split", "validation", "--limit", "1",
                                   "--max-new-tokens", "2"]) == 0
    assert "has no best/ checkpoint; evaluating last/" in capsys.readouterr().err
