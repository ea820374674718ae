"""train.py and evaluate.py end to end on tiny-random + sample (torchrun runs: test_distributed.py)."""

import json

import pytest

from minisumm.errors import run_cli
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.cli.train import main as train_main

SMALL = ["--model", "tiny-random", "--data", "sample", "--train-size", "24", "--validation-size", "8",
         "--test-size", "6", "--max-length", "160", "--max-summary-tokens", "40", "--batch-size", "4",
         "--grad-accum", "1", "--no-progress"]


def records(run, kind):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


@pytest.mark.parametrize("method", ["prompt", "prefix", "lora", "last-layers", "full"])
def test_train_then_evaluate_every_method(method, tmp_path, capsys):
    run = tmp_path / method
    flags = [*SMALL, "--cache-dir", str(tmp_path / "cache"), "--max-steps", "4", "--eval-every", "2"]
    assert run_cli(train_main, ["--method", method, "--out", str(run), *flags]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == method and summary["steps"] == 4
    assert [r["step"] for r in records(run, "eval")] == [0, 2, 4]

    assert run_cli(evaluate_main, [str(run), "--split", "validation", "--max-new-tokens", "8",
                                   "--batch-size", "4"]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    # the evaluation loss on the validation split is the trainer's best validation loss, from the checkpoint alone
    assert metrics["loss"] == pytest.approx(summary["best_val_loss"], rel=1e-5)
    predictions = (run / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == metrics["examples"] == 8
    assert set(json.loads(predictions[0])) == {"id", "reference", "prediction"}
    assert "rougeLsum" in capsys.readouterr().out


def test_bad_checkpoint_path_is_one_sentence(tmp_path, capsys):
    assert run_cli(evaluate_main, [str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not exist" in err


def test_lead3_baseline_on_a_file(tmp_path, capsys):
    rows = [{"id": str(i), "article": f"First fact {i}. Second fact here. Third one now. Fourth is left out.",
             "highlights": f"First fact {i}.\nSecond fact here."} for i in range(3)]
    path = tmp_path / "mini.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "lead3"
    assert run_cli(evaluate_main, ["--baseline", "lead3", "--data", str(path), "--out", str(out)]) == 0
    predictions = [json.loads(line)["prediction"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert predictions[0] == "First fact 0.\nSecond fact here.\nThird one now."
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["examples"] == 3 and metrics["rouge"]["rouge1"]["mid"] > 50
