"""evaluate.py and summarize: baselines, the real CNN/DM sample, and bad checkpoints in one sentence."""

import argparse
import dataclasses
import errno
import io
import json
import os

import pytest
from rouge_score import rouge_scorer

from minisumm.config import DataConfig, DecodeConfig
from minisumm.data import load_file
from minisumm.cli import evaluate as evaluate_cli, summarize
from minisumm.errors import run_cli
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.cli.summarize import main as summarize_main
from test_checkpoint import saved


def test_lead3_on_real_cnndm_sample_matches_rouge_score_directly(shared_dir, tmp_path):
    data = shared_dir / "data" / "cnndm-test-sample20.jsonl"
    out = tmp_path / "lead3"
    assert run_cli(evaluate_main, ["--baseline", "lead3", "--data", str(data), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    examples = load_file(data, DataConfig())
    rows = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert [r["reference"] for r in rows] == [e.summary for e in examples]
    for row, example in zip(rows, examples):  # three sentences, each from the article's opening
        sentences = row["prediction"].split("\n")
        assert len(sentences) == 3 and all(s in example.article[:1500] for s in sentences)
    # the scores are rouge-score's on the written predictions (which lead-3 cut is right: test_metrics.py's
    # hand-split leads)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    direct = [scorer.score(r["reference"], r["prediction"]) for r in rows]
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
    assert metrics["decoding"] == dataclasses.asdict(DecodeConfig(max_new_tokens=6))  # the settings used, all of them


def test_decoding_has_its_own_batch_size_wide_on_cuda_and_the_predictions_keep_their_order(tmp_path, capsys,
                                                                                            monkeypatch):
    import torch

    from minisumm.tools import decoding

    assert decoding.decode_batch_size(None, torch.device("cuda", 0), 8) == decoding.CUDA_DECODE_BATCH_SIZE == 64
    assert decoding.decode_batch_size(None, torch.device("cpu"), 8) == 8  # the loss pass's, on a CPU
    assert decoding.decode_batch_size(5, torch.device("cuda", 0), 8) == 5
    help_text = " ".join(evaluate_cli.parser().format_help().split())
    assert "--decode-batch-size" in help_text and "(default: 64 on CUDA" in help_text

    used = []

    def recording_summarize(*args, batch_size, **kwargs):
        used.append(batch_size)
        return decoding.summarize(*args, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(evaluate_cli, "summarize", recording_summarize)
    predictions = {}
    for flags in ([], ["--decode-batch-size", "2"]):  # one batch of 4 (--batch-size, on a CPU), or 2 + 2
        out = tmp_path / f"out{len(flags)}"
        assert run_cli(evaluate_main, ["--baseline", "zero-shot", "--model", "tiny-random", "--data", "sample",
                                       "--limit", "4", "--max-new-tokens", "6", "--batch-size", "4",
                                       "--out", str(out), *flags]) == 0
        assert json.loads((out / "metrics.json").read_text())["decode_batch_size"] == used[-1]
        predictions[len(flags)] = (out / "predictions.jsonl").read_text()
    assert used == [4, 2]
    assert predictions[0] == predictions[2]  # same summaries for the same ids, in the data's order
    assert len({json.loads(line)["prediction"] for line in predictions[0].splitlines()}) > 2  # not all alike

    monkeypatch.setattr(evaluate_cli, "load_checkpoint", lambda *a: pytest.fail("the model was loaded"))
    for value in ("0", "-3"):
        assert run_cli(evaluate_main, [str(tmp_path), "--out", str(tmp_path / "eval"),
                                       "--decode-batch-size", value]) == 2
        assert capsys.readouterr().err == f"error: --decode-batch-size must be at least 1; got {value}.\n"


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


@pytest.mark.parametrize("make_parser", [evaluate_cli.parser, summarize.parser], ids=["evaluate", "summarize"])
def test_help_states_each_default_once_and_the_one_argparse_uses(make_parser):
    p = make_parser()
    stated = 0
    for action in p._actions:
        text = action.help % {**vars(action), "prog": p.prog} if action.help else ""
        assert text.count("(default:") <= 1, action.dest
        if action.default not in (None, False, argparse.SUPPRESS):  # a value the user gets without asking
            assert text.count("(default:") == 1, f"{action.dest}'s default is not in its help"
            shown = ("on" if action.default else "off") if isinstance(action.default, bool) else repr(action.default)
            assert f"(default: {shown})" in text, action.dest  # a switch's default as config.py states it
        stated += text.count("(default:")
    # the formatter adds none of its own (ArgumentDefaultsHelpFormatter would add "(default: None)" to --out)
    assert " ".join(p.format_help().split()).count("(default:") == stated


def test_evaluate_and_summarize_take_decode_config_s_flags_and_checks(tmp_path, capsys, monkeypatch):
    flags = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(DecodeConfig)}
    for p in (evaluate_cli.parser(), summarize.parser()):
        assert flags <= set(p._option_string_actions)
    args = summarize.parser().parse_args(["run", "--beams", "4", "--length-penalty", "0.5"])
    assert evaluate_cli.decode_config(args) == DecodeConfig(beams=4, length_penalty=0.5)
    monkeypatch.setattr(summarize, "load_checkpoint", lambda *a: pytest.fail("the model was loaded"))
    monkeypatch.setattr(evaluate_cli, "load_checkpoint", lambda *a: pytest.fail("the model was loaded"))
    bad = ["--min-new-tokens", "9", "--max-new-tokens", "4"]
    assert run_cli(summarize_main, [str(tmp_path), "-", *bad]) == 2
    assert run_cli(evaluate_main, [str(tmp_path), "--out", str(tmp_path / "eval"), *bad]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: --min-new-tokens (9) cannot exceed --max-new-tokens (4)."] * 2


class Terminal(io.StringIO):
    def isatty(self):
        return True


ZERO_SHOT = ["--baseline", "zero-shot", "--model", "tiny-random", "--data", "sample", "--limit", "3",
             "--max-new-tokens", "6", "--batch-size", "2"]


def test_progress_bars_draw_on_a_terminal_only(tmp_path, capsys, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert run_cli(evaluate_main, [*ZERO_SHOT, "--out", str(tmp_path / "a")]) == 0
    drawn = terminal.getvalue()
    # tqdm redraws at most every 0.1 s, so only the first drawing of each bar is certain: its total
    assert "loss:   0%" in drawn and "0/2 [" in drawn  # 3 examples in batches of 2
    assert "decode:   0%" in drawn and "0/3 [" in drawn  # 3 summaries (updates: test_generate's summarize test)
    assert drawn.endswith("\r")  # erased when done: the table follows on a clean line
    assert "decoding " in capsys.readouterr().out

    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    assert run_cli(evaluate_main, [*ZERO_SHOT, "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert quiet.getvalue() == ""

    monkeypatch.undo()  # capsys' stderr, a pipe rather than a terminal
    assert run_cli(evaluate_main, [*ZERO_SHOT, "--out", str(tmp_path / "c")]) == 0
    assert capsys.readouterr().err == ""


def test_summarize_prints_control_characters_escaped(tmp_path, capsys, monkeypatch):
    folder, _ = saved(tmp_path, "lora")
    article = tmp_path / "article.txt"
    article.write_text("The mayor opened a library.")
    hostile = "Red \x1b[31malert\x1b[0m rang\x07 the\tbell. Then \x9b2J and a\u202e reversed end.\rOver"
    monkeypatch.setattr(summarize, "summarize", lambda *args, **kwargs: [hostile])
    assert run_cli(summarize_main, [str(folder), str(article)]) == 0
    out = capsys.readouterr().out
    assert not any(ord(c) < 32 and c not in "\t\n" or 0x7f <= ord(c) <= 0x9f or c == "\u202e" for c in out)
    # one sentence a line; a carriage return ends a line, as every line break does in split_sentences
    assert out == "Red \\x1b[31malert\\x1b[0m rang\\x07 the\tbell.\nThen \\x9b2J and a\\u202e reversed end.\nOver\n"
