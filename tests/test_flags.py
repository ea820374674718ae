"""Flags a user can trust: Hugging Face's spellings and typos answered with the right flag in one line, one
default per flag in --help (train.py and run_all.py), warnings for data flags the source does not read,
and --tensorboard refused at start-up when its package is missing."""

import argparse
import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from minisumm import config as cfg
from minisumm.cli.train import main as train_main
from minisumm.cli.train import parser, warn_unused
from minisumm.errors import run_cli
from minisumm.tools.flags import suggest

RUN_ALL = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


def error_line(capsys, argv) -> str:
    with pytest.raises(SystemExit) as stop:
        train_main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("given, meant", [
    ("--max_steps", "--max-steps"), ("--learning_rate", "--lr"), ("--output_dir", "--out"),
    ("--lora_r", "--lora-rank"), ("--lora_alpha", "--lora-alpha"), ("--num_train_epochs", "--epochs"),
    ("--per_device_train_batch_size", "--batch-size"), ("--gradient_accumulation_steps", "--grad-accum"),
    ("--warmup_ratio", "--warmup-ratio"), ("--weight_decay", "--weight-decay"), ("--bf16", "--precision bf16"),
    ("--dataset_name", "--data"), ("--lora-rnak", "--lora-rank"), ("--eval-evry", "--eval-every"),
])
def test_hugging_face_spellings_and_typos_name_the_flag_meant(capsys, given, meant):
    assert error_line(capsys, ["--method", "lora", given, "4"]) == (
        f"error: unknown flag {given}; did you mean {meant}? (see train.py --help)\n")


def test_every_flag_spelled_in_snake_case_is_answered_with_its_kebab_case():
    options = [o for a in parser()._actions for o in a.option_strings if o.startswith("--") and "-" in o[2:]]
    assert len(options) > 40
    for option in options:
        assert suggest("--" + option[2:].replace("-", "_"), options) == option


def test_a_value_after_equals_and_a_flag_like_nothing_known(capsys):
    assert error_line(capsys, ["--max_steps=5"]) == (
        "error: unknown flag --max_steps; did you mean --max-steps? (see train.py --help)\n")
    assert error_line(capsys, ["--zebra", "1"]) == "error: unknown flag --zebra (see train.py --help)\n"
    assert error_line(capsys, ["stray"]) == "error: unrecognized arguments: stray (see train.py --help)\n"


# ----------------------------------------------------------------------------------------------- --help
def help_by_flag(p: argparse.ArgumentParser) -> dict[str, str]:
    text = p.format_help()
    entries = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    entries = [entry.split("\n\n")[0] for entry in entries if entry.startswith("-")]  # not the next group's title
    return {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries}


def test_train_help_states_each_default_once():
    helps = help_by_flag(parser())
    from_fields = {"--" + f.name.replace("_", "-") for section in dataclasses.fields(cfg.RunConfig)
                   for f in dataclasses.fields(section.default_factory)}
    assert from_fields <= set(helps)
    for flag, text in helps.items():
        assert text.lower().count("default") <= 1 and "(default: None)" not in text, text
        if flag in from_fields:
            assert text.lower().count("default") == 1, text
    assert "default: per method: prompt 3e-2, prefix 5e-3, lora 2e-4" in helps["--lr"]
    assert helps["--eval-every"].endswith("(default: once per epoch).")
    assert helps["--lora-rank"].endswith("LoRA rank r. (default: 8)")
    assert helps["--train-lm-head"].endswith("(default: off)")
    assert "'train[:95%]'" in helps["--train-split"]  # a literal %, not argparse's formatting


def test_train_help_documents_xsum_and_cnn_dailymail_fields():
    helps = help_by_flag(parser())
    assert "EdinburghNLP/xsum with --article-field document --summary-field summary" in helps["--data"]
    assert "CNN/DailyMail: article; XSum: document" in helps["--article-field"]
    assert "CNN/DailyMail: highlights; XSum: summary" in helps["--summary-field"]


def test_a_field_whose_default_is_none_must_say_what_that_means():
    @dataclasses.dataclass
    class Settings:
        steps: int | None = dataclasses.field(default=None, metadata={"help": "Steps."})
    with pytest.raises(ValueError, match="help of steps must say what its default"):
        cfg.add_arguments(argparse.ArgumentParser(), Settings)


def test_run_all_help_states_each_default_once(monkeypatch):
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    run_all = importlib.util.module_from_spec(spec)
    monkeypatch.setattr(sys, "path", list(sys.path))  # run_all puts the checkout on sys.path
    spec.loader.exec_module(run_all)
    helps = help_by_flag(run_all.parser())
    for text in helps.values():
        assert text.lower().count("default") <= 1 and "(default: None)" not in text, text
    assert helps["--out"].endswith("(default: runs/compare-<timestamp>).")
    assert helps["--quick"].endswith("(default: on for --model tiny-random, else off).")
    with pytest.raises(SystemExit):
        run_all.parser().parse_args(["--skip_done"])


# ----------------------------------------------------------------------------------------------- warnings
def test_data_flags_the_source_does_not_read_are_warned_about(capsys):
    def warnings_for(argv):
        config = cfg.from_args(parser().parse_args(argv), cfg.RunConfig())
        warn_unused(config, {arg[2:].replace("-", "_"): True for arg in argv if arg.startswith("--")})
        return capsys.readouterr().err.splitlines()

    assert warnings_for(["--data", "sample", "--data-config", "3.0.0", "--article-field", "text"]) == [
        "warning: --data-config does nothing with --data sample (it applies to hub datasets); it is ignored.",
        "warning: --article-field does nothing with --data sample (its fields are article, highlights and id); "
        "it is ignored."]
    assert "use --data abisee/cnn_dailymail" in warnings_for(["--data", "cnn_dailymail", "--summary-field", "x"])[0]
    assert warnings_for(["--data", "EdinburghNLP/xsum", "--article-field", "document", "--validation-split",
                         "train[95%:]"]) == []
    assert warnings_for(["--data", "cnn_dailymail", "--data-config", "2.0.0", "--test-split", "validation"]) == []


# ----------------------------------------------------------------------------------------------- --tensorboard
def test_tensorboard_without_its_package_is_one_sentence_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as where tensorboard is not installed
    out = tmp_path / "run"
    assert run_cli(train_main, ["--model", "tiny-random", "--data", "sample", "--tensorboard", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "error: --tensorboard needs the tensorboard package: pip install 'minisumm[tensorboard]' (or leave out "
        "--tensorboard; metrics.jsonl holds the same numbers).\n")
    assert not out.exists()
