"""`--config FILE`: flat, sectioned and a run's own config.json read alike, the command line overrides them,
values are checked like flags, and every bad file is one sentence naming the file and the key."""

import json
import sys

import pytest

from minisumm.cli.train import main as train_main
from minisumm.cli.train import parse
from minisumm.config import RunConfig, from_args
from minisumm.errors import MinisummError, run_cli
from minisumm.tools.checkpoint import config_record


def settings(path, *flags) -> RunConfig:
    return from_args(parse(["--config", str(path), *flags]), RunConfig())


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def a_run_config() -> RunConfig:
    config = RunConfig()
    config.method.method, config.method.lora_rank, config.method.lora_targets = "lora", 4, "qv,mlp"
    config.model.model, config.model.dropout = "tiny-random", 0.0
    config.data.data, config.data.train_size, config.data.separator = "sample", "all", "\nSummary: "
    config.train.lr, config.train.max_steps, config.train.decay_1d, config.train.tensorboard = 3e-4, 50, True, True
    return config


def test_a_runs_config_json_repeats_the_run_and_a_flag_changes_one_setting(tmp_path):
    original = a_run_config()
    path = write(tmp_path, "config.json", config_record(original))
    assert settings(path) == original
    changed = settings(path, "--lr", "1e-3", "--no-tensorboard")
    assert changed.train.lr == 1e-3 and not changed.train.tensorboard
    changed.train.lr, changed.train.tensorboard = original.train.lr, True
    assert changed == original
    assert settings(tmp_path) == original  # the run folder itself


def test_flat_and_sectioned_settings_read_alike(tmp_path):
    flat = write(tmp_path, "flat.json", {"method": "lora", "lora_rank": 4, "lr": 0.001, "data": "sample",
                                         "train_size": 100, "out": "runs/x"})
    sectioned = write(tmp_path, "sections.json", {"method": {"method": "lora", "lora_rank": 4},
                                                  "train": {"lr": 0.001}, "data": {"data": "sample", "train_size": 100},
                                                  "out": "runs/x"})
    for path in (flat, sectioned):
        args = parse(["--config", str(path)])
        assert (args.method, args.lora_rank, args.lr, args.data, args.train_size, args.out) == (
            "lora", 4, 0.001, "sample", "100", "runs/x")
        assert args.epochs is None  # not in the file: the flag's default (10, or the tiny-news preset)


def test_yaml_with_its_quirks(tmp_path):
    path = write(tmp_path, "run.yaml", "method: lora\nlr: 3e-4\ntrain_size: 500\ngroup_by_length: no\n"
                                       "train:\n  max_steps: 20\n")
    args = parse(["--config", str(path), "--method", "prompt"])
    # YAML reads 3e-4 (no dot) as text; it is a number here, as on the command line
    assert (args.method, args.lr, args.train_size, args.group_by_length, args.max_steps) == (
        "prompt", 3e-4, "500", False, 20)


def test_yaml_without_pyyaml_is_one_sentence_pointing_to_json(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # as where PyYAML is not installed
    path = write(tmp_path, "run.yml", "lr: 0.1\n")
    with pytest.raises(MinisummError) as raised:
        parse(["--config", str(path)])
    assert str(raised.value) == (f"--config {path} is YAML, which needs PyYAML: pip install pyyaml, or write the "
                                 f"settings as JSON.")


@pytest.mark.parametrize("content, message", [
    ({"learning_rate": 0.1}, "has the unknown setting 'learning_rate'; did you mean 'lr'?"),
    ({"lora-rank": 4}, "has the unknown setting 'lora-rank'; did you mean 'lora_rank'?"),
    ({"bf16": True}, "has the unknown setting 'bf16'; did you mean 'precision' set to 'bf16'?"),
    ({"method": {"lora_rnk": 4}}, "has the unknown setting 'method.lora_rnk'; did you mean 'lora_rank'?"),
    ({"data": {"lr": 0.1}}, "'lr' is a train setting, not a data one; move it to 'train'."),
    ({"resume": "runs/x"}, "has the unknown setting 'resume'"),
    ({"lora_rank": "four"}, "lora_rank should be a whole number; got 'four'."),
    ({"lora_rank": 4.5}, "lora_rank should be a whole number; got 4.5."),
    ({"lr": [0.1]}, "lr should be a number; got [0.1]."),
    ({"batch_size": None}, "batch_size should be a whole number; got None."),
    ({"method": "adapter"}, "method should be one of prompt, prefix, lora, last-layers, full; got 'adapter'."),
    ({"decay_1d": "yes"}, "decay_1d should be true or false; got 'yes'."),
    ({"format_version": 99, "config": RunConfig().to_dict()}, "was written in format 99"),
    ({"config": RunConfig().to_dict(), "lr": 0.1}, "looks like a run's config.json but also holds 'lr'"),
    ([1, 2], "should hold an object of settings"),
    ('{"lr": 0.1,\n "method": }', "is not valid JSON (line 2"),
], ids=["hf-name", "kebab", "hf-switch", "typo-in-section", "wrong-section", "resume", "text-for-int",
        "fraction-for-int", "list", "null", "choice", "text-for-bool", "newer-format", "beside-config", "list-file",
        "bad-json"])
def test_a_bad_settings_file_is_one_sentence_naming_file_and_key(tmp_path, content, message):
    path = write(tmp_path, "settings.json", content)
    with pytest.raises(MinisummError) as raised:
        parse(["--config", str(path)])
    assert str(raised.value).startswith(f"--config {path}") and message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_null_is_accepted_where_the_default_is_none(tmp_path):
    path = write(tmp_path, "settings.json", {"lr": None, "epochs": None, "max_steps": None, "dropout": None})
    assert settings(path) == RunConfig()


def test_bad_paths_and_formats(tmp_path):
    cases = [(tmp_path / "nope.json", "does not exist"), (tmp_path, "is a folder without a config.json"),
             (write(tmp_path, "run.toml", "lr = 0.1"), "has the extension '.toml'"),
             (write(tmp_path, "bad.yaml", "lr: [0.1\n"), "is not valid YAML")]
    for path, message in cases:
        with pytest.raises(MinisummError, match=message):
            parse(["--config", str(path)])


def test_through_the_cli_config_and_resume_exclude_each_other(tmp_path, capsys):
    path = write(tmp_path, "settings.json", {"lora_rank": 0})
    assert run_cli(train_main, ["--config", str(path), "--model", "tiny-random", "--data", "sample",
                                "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == "error: --lora-rank must be a positive integer (1 or more); got 0.\n"
    assert run_cli(train_main, ["--config", str(path), "--resume", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith("error: --config and --resume exclude each other")
    assert not (tmp_path / "run").exists()
