"""Hostile input, round two: what was guessed at is refused (CSV rows, non-finite flags, out-of-range seeds),
what was tokenised as a special token is text, what ended in a traceback or a hang (deep JSON, a damaged
model file, an endless standard input, a YAML alias bomb) is one sentence, and warnings are one line."""

import io
import json
import sys

import pytest

from minisumm import batching, data
from minisumm.cli import summarize
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.cli.train import main as train_main
from minisumm.config import DataConfig
from minisumm.data import Example
from minisumm.errors import MinisummError, run_cli
from minisumm.tools.checkpoint import load_checkpoint
from minisumm.tools import compare, token_cache
from minisumm.tools.config_files import read_settings
from minisumm.tools.data_files import read_rows
from minisumm.tools.loading import EOS, byte_level_tokenizer, load_model_and_tokenizer
from conftest import tiny_config
from test_checkpoint import saved
from test_cli import SMALL
from test_compare import write_run
from test_nothing_lost import lead3_file

DEEP = "[" * 5000 + "]" * 5000  # RecursionError in Python's json module


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith(("note:", "warning:"))]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ---------------------------------------------------------------------------------------------- item 6
@pytest.mark.parametrize("text, words", [
    ('article,highlights\nA fine story.,Fine.\n"Article one,summary one\nArticle two,summary two\n',
     "row starting on line 3 (unexpected end of data)"),
    ('article,highlights\n"Article one,summary one\nArticle two,summary two\n"Three",s3\n',
     "row starting on line 2 (',' expected after '\"')"),
    ('article,highlights\nThe cat, the dog and the bird sat.,They sat.\n',
     "the row starting on line 2 has 3 cells but the header names 2 columns"),
    ('article,highlights,id\nA story.,A summary.\n', "the row starting on line 2 has 2 cells but the header names 3"),
], ids=["unterminated-quote-at-end", "unterminated-quote-merging-rows", "unquoted-comma", "missing-cell"])
def test_a_csv_row_that_cannot_be_read_for_sure_is_refused_with_its_line(tmp_path, text, words):
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(MinisummError) as raised:
        read_rows(path)
    assert str(path) in str(raised.value) and words in str(raised.value)


def test_csv_quoted_commas_line_breaks_and_blank_lines_still_read(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('article,highlights\n"A cat, a dog.",Both.\n\n"Two\nlines.","Said ""hi""."\n')
    assert read_rows(path) == [("line 2", {"article": "A cat, a dog.", "highlights": "Both."}),
                               ("line 4", {"article": "Two\nlines.", "highlights": 'Said "hi".'})]


# ---------------------------------------------------------------------------------------------- item 9
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_length_penalty_is_refused_before_any_work(tmp_path, capsys, value):
    missing = str(tmp_path / "no-such-run")  # never reached: the flag is checked first
    for main in (evaluate_main, summarize.main):
        assert run_cli(main, [missing, f"--length-penalty={value}"]) == 2
        assert "--length-penalty must be a finite number" in one_error(capsys)


# ---------------------------------------------------------------------------------------------- item 10
def test_the_text_endoftext_in_user_text_is_text_not_a_second_eos():
    tokenizer = byte_level_tokenizer()
    eos = tokenizer.eos_token_id
    example = Example("1", f"An article that quotes {EOS} in its text.", f"A summary with {EOS} inside.")
    encoded = batching.encode_example(tokenizer, example, DataConfig(max_length=512), 0)
    assert encoded["input_ids"].count(eos) == 1 and encoded["input_ids"][-1] == eos
    labelled = [token for token in encoded["labels"] if token != batching.IGNORE_INDEX]
    assert labelled.count(eos) == 1 and labelled[-1] == eos
    assert tokenizer.decode(labelled[:-1]) == f"A summary with {EOS} inside."  # every character kept, as text
    prompt = batching.encode_prompt(tokenizer, example.article, DataConfig(max_length=512), 0, 16)
    assert eos not in prompt and tokenizer.decode(prompt).startswith(example.article)


# ---------------------------------------------------------------------------------------------- item 11
def test_deeply_nested_json_is_one_sentence_wherever_it_is_read(tmp_path, capsys):
    (tmp_path / "deep.json").write_text('{"data": ' + DEEP + "}")
    (tmp_path / "deep.jsonl").write_text('{"article": "a", "highlights": ' + DEEP + "}\n")
    for name in ("deep.json", "deep.jsonl"):
        with pytest.raises(MinisummError, match="nests deeper than 100 levels"):
            read_rows(tmp_path / name)
    (tmp_path / "settings.json").write_text('{"lr": ' + DEEP + "}")
    assert run_cli(train_main, [*SMALL, "--config", str(tmp_path / "settings.json")]) == 2
    assert "nests deeper than 100 levels" in one_error(capsys)
    good, bad = tmp_path / "runs" / "good", tmp_path / "runs" / "bad"
    write_run(good, "lora", 294_912, 124_734_720)
    write_run(bad, "full", 124_734_720, 124_734_720)
    (bad / "summary.json").write_text('{"method": "full", "x": ' + DEEP + "}")
    assert run_cli(compare.main, [str(good), str(bad), "--out", str(tmp_path / "report.md")]) == 0
    assert f"note: skipped {bad}: summary.json could not be read (it nests deeper" in capsys.readouterr().err
    folder, _ = saved(tmp_path, "lora")
    (folder / "config.json").write_text('{"format_version": 1, "config": ' + DEEP + "}")
    with pytest.raises(MinisummError, match="nests deeper than 100 levels"):
        load_checkpoint(folder)


# ---------------------------------------------------------------------------------------------- item 13
@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b"\x80\x04\x95" + b"\0" * 64],
                         ids=["truncated", "pickle-bytes"])
def test_a_damaged_model_safetensors_in_a_base_model_folder_is_one_sentence(tmp_path, damage):
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    weights = tmp_path / "base" / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(MinisummError, match="Could not load the weights in"):
        load_model_and_tokenizer(str(tmp_path / "base"))


def test_a_damaged_shipped_tiny_news_says_how_to_get_it_back(tmp_path, monkeypatch):
    import minisumm.tiny_news

    folder = tmp_path / "model"
    model, tokenizer = load_model_and_tokenizer("tiny-random")  # stands in for the shipped model: same layout
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:1000])
    monkeypatch.setattr(minisumm.tiny_news, "MODEL_DIR", folder)
    with pytest.raises(MinisummError) as raised:
        load_model_and_tokenizer("tiny-news")
    assert f"shipped in {folder} does not load" in str(raised.value)
    assert "reinstall minisumm, or rebuild it with `minisumm pretrain --out DIR`" in str(raised.value)
    (folder / "model.safetensors").unlink()
    with pytest.raises(MinisummError, match="The shipped tiny-news model is missing from .*reinstall minisumm"):
        load_model_and_tokenizer("tiny-news")


# ---------------------------------------------------------------------------------------------- item 14
def test_out_of_range_seeds_are_refused_before_any_work(tmp_path, capsys):
    assert run_cli(train_main, [*SMALL, "--seed", str(2**70), "--out", str(tmp_path / "run")]) == 2
    assert "--seed must be a whole number from 0 to 4,294,967,295" in one_error(capsys)
    out = tmp_path / "lead3"
    assert run_cli(evaluate_main, ["--baseline", "lead3", "--data", str(lead3_file(tmp_path)), "--seed", "-1",
                                   "--out", str(out)]) == 2
    assert "--seed must be a whole number" in one_error(capsys)
    assert not out.exists() and not (tmp_path / "run").exists()


def test_evaluate_checks_the_device_before_loading_anything(tmp_path, capsys, monkeypatch):
    import minisumm.cli.evaluate as evaluate

    monkeypatch.setattr(evaluate, "_load", lambda args: pytest.fail("the model was loaded before --device was"))
    assert run_cli(evaluate_main, ["--baseline", "zero-shot", "--model", "tiny-random", "--device", "tpu",
                                   "--out", str(tmp_path / "out")]) == 2
    assert "tpu" in one_error(capsys)


# ---------------------------------------------------------------------------------------------- item 16
@pytest.mark.parametrize("summary, shown", [
    ({"trainable_params": -5}, "trainable_params = -5, not a whole number, 0 or more"),
    ({"trainable_params": 2.5}, "trainable_params = 2.5, not a whole number"),
    ({"wall_time_s": -1.0}, "wall_time_s = -1.0, not a number, 0 or more"),
    ({"trainable_share": 7}, "trainable_share = 7, not a share from 0 to 1"),
], ids=["negative-params", "fractional-params", "negative-time", "share"])
def test_compare_skips_a_run_whose_numbers_cannot_be_drawn(tmp_path, capsys, summary, shown):
    good, bad = tmp_path / "runs" / "good", tmp_path / "runs" / "bad"
    write_run(good, "lora", 294_912, 124_734_720)
    write_run(bad, "full", 124_734_720, 124_734_720)
    record = json.loads((bad / "summary.json").read_text())
    (bad / "summary.json").write_text(json.dumps({**record, **summary}))
    assert run_cli(compare.main, [str(good), str(bad), "--out", str(tmp_path / "report.md")]) == 0
    assert f"note: skipped {bad}: summary.json has {shown}" in capsys.readouterr().err


def test_compare_reads_past_undecodable_bytes_in_metrics_jsonl(tmp_path, capsys):
    run = tmp_path / "runs" / "lora-1"
    write_run(run, "lora", 294_912, 124_734_720)
    with open(run / "metrics.jsonl", "ab") as stream:
        stream.write(b"\x00\xff\xfe\n")
    assert run_cli(compare.main, [str(run), "--out", str(tmp_path / "report.md")]) == 0
    assert "lora-1" in capsys.readouterr().out
    assert len(compare.read_entry(run).curve) == 3


def test_compare_refuses_rouge_intervals_it_cannot_draw(tmp_path, capsys):
    run = tmp_path / "runs" / "lora-1"
    write_run(run, "lora", 294_912, 124_734_720)
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    metrics["rouge"]["rougeL"] = {"mid": 30.0, "low": 35.0, "high": 31.0}
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(MinisummError, match="low <= mid"):
        compare.read_entry(run)


# ---------------------------------------------------------------------------------------------- item 17
class Endless:
    """A standard input that never ends (as `< /dev/zero`): reading it all would never return."""

    class buffer:
        @staticmethod
        def read(size=-1):
            if size is None or size < 0:
                raise AssertionError("standard input was read without a limit")
            return b"x" * size


def test_summarize_reads_at_most_its_cap_from_standard_input_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Endless)
    with pytest.raises(MinisummError, match="Standard input holds more than 10 MiB, the most summarize reads"):
        summarize.read_text("-")
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * (summarize.MAX_INPUT_BYTES // 5 + 1))
    with pytest.raises(MinisummError, match="holds more than 10 MiB"):
        summarize.read_text(str(big))
    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": io.BytesIO(b"A short article.\n")}))
    assert summarize.read_text("-") == "A short article."


# ---------------------------------------------------------------------------------------------- item 18
BOMB = ('lr:\n  - &a ["lol", "lol", "lol"]\n'  # each item nine times the one before: 3 x 9**5 strings at the end
        + "".join(f"  - &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcde", "bcdef")))


def test_a_yaml_alias_bomb_is_refused_at_once_in_a_short_message(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert run_cli(train_main, ["--config", str(path)]) == 2
    error = one_error(capsys)
    assert "the alias *a (settings files may not use YAML anchors and aliases)" in error and len(error) < 400


def test_a_bad_value_is_shown_as_a_short_excerpt(tmp_path):
    from minisumm.cli.train import parser

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"lr": ["x" * 1000] * 100_000}))
    with pytest.raises(MinisummError) as raised:
        read_settings(path, parser())
    assert "lr should be a number; got [" in str(raised.value) and len(str(raised.value)) < 400


# ---------------------------------------------------------------------------------------------- item 19
def test_a_cache_that_cannot_be_written_is_one_warning_line(tmp_path, capsys, monkeypatch):
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(token_cache, "write", full_disk)
    _, tokenizer = load_model_and_tokenizer("tiny-random")
    _, splits = token_cache.build_datasets(tiny_config("lora", tmp_path).data, tokenizer, 0, 0, splits=("validation",))
    assert len(splits["validation"]) == 8
    err = capsys.readouterr().err
    assert err.startswith("warning: could not write the tokenised-data cache") and err.count("\n") == 1


@pytest.mark.parametrize("settings, warned", [
    ({"method": "prompt", "lora_rank": 4}, "warning: lora_rank in --config {} does nothing with --method prompt"),
    ({"method": {"method": "lora"}, "data": {"data": "sample", "article_field": "text"}},
     "warning: article_field in --config {} does nothing with --data sample"),
], ids=["method", "data-source"])
def test_settings_of_another_method_in_a_config_file_are_warned_about(tmp_path, capsys, settings, warned):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keeps train.py from starting: the warnings come first")
    assert run_cli(train_main, [*SMALL, "--config", str(path), "--out", str(run)]) == 2
    assert warned.format(path) in capsys.readouterr().err


def test_a_runs_own_config_json_gives_no_such_warnings(tmp_path, capsys):
    folder, _ = saved(tmp_path, "prompt")  # its config.json records lora_rank and every other setting
    run = tmp_path / "new"
    run.mkdir()
    (run / "notes.txt").write_text("keeps train.py from starting")
    assert run_cli(train_main, ["--config", str(folder.parent), "--out", str(run)]) == 2
    assert "warning:" not in capsys.readouterr().err


def test_one_file_for_two_splits_is_refused(tmp_path):
    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps({"article": f"Story {i}.", "highlights": f"S {i}."}) + "\n" for i in range(4)))
    link = tmp_path / "same.jsonl"
    link.symlink_to(path)
    config = DataConfig(data="", train_file=str(path), validation_file=str(link))
    with pytest.raises(MinisummError, match="--train-file and --validation-file name the same file"):
        data.load_splits(config, 0, splits=("train", "validation"))


def test_pretrain_draws_no_bars_into_a_file_or_pipe(tmp_path, capsys):
    from minisumm.tiny_news import pretrain

    tiny = ["--stories", "100", "--vocab-size", "300", "--n-layer", "1", "--n-head", "1", "--n-embd", "8",
            "--n-positions", "32", "--block-size", "16", "--batch-size", "2", "--steps", "2", "--warmup-steps", "0"]
    for extra in ([], ["--no-progress"]):
        out = tmp_path / f"tiny{len(extra)}"
        assert run_cli(pretrain.main, [*tiny, *extra, "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert "\r" not in err and "it/s" not in err, err  # capsys is not a terminal
        assert (out / "model.safetensors").is_file()
