"""evaluate.py and summarize: baselines, the real CNN/DM sample, and bad checkpoints in one sentence."""

import io
import json

import pytest
from rouge_score import rouge_scorer

from minisumm.config import DataConfig
from minisumm.data import load_file
from minisumm.errors import run_cli
from minisumm.evaluate_cli import main as evaluate_main
from minisumm.metrics import lead3, split_sentences
from minisumm.summarize import main as summarize_main
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
    monkeypatch.setattr("sys.stdin", io.StringIO(article.read_text()))
    assert run_cli(summarize_main, [str(folder), "-", "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out == from_file  # greedy: the same text gives the same summary
    article.write_text("   \n")
    assert run_cli(summarize_main, [str(folder), str(article)]) == 2
    assert "is empty" in capsys.readouterr().err
