"""Settings: invalid values are rejected before any work, naming the allowed range; JSON round trip."""

import pytest

from minisumm.config import RunConfig
from minisumm.errors import MinisummError
from minisumm.cli.train import main as train_main
from minisumm.cli.train import parser


def test_round_trip_through_dict():
    config = RunConfig()
    config.method.method, config.method.lora_rank, config.data.separator = "lora", 4, "\nSummary: "
    again = RunConfig.from_dict(config.to_dict())
    assert again == config


def test_unknown_setting_means_newer_format():
    raw = RunConfig().to_dict()
    raw["method"]["lora_magic"] = 1
    with pytest.raises(MinisummError, match="newer version"):
        RunConfig.from_dict(raw)


@pytest.mark.parametrize("flags, message", [
    (["--lora-rank", "-1"], "--lora-rank must be a positive integer"),
    (["--patience", "0"], "--patience must be at least 1"),
    (["--method", "prompt", "--prompt-length", "1000"], "leaves no room for the article"),
    (["--lora-targets", "qx"], "--lora-targets must be letters from q, k, v"),
    (["--lora-dropout", "1.5"], "--lora-dropout must be in [0, 1)"),
    (["--train-size", "0"], "--train-size must be a positive number"),
    (["--split-ratios", "0.5,0.5,0.5"], "--split-ratios must be three"),
])
def test_invalid_values_rejected_before_any_work(flags, message, tmp_path, capsys):
    from minisumm.errors import run_cli
    out = tmp_path / "run"
    code = run_cli(train_main, ["--model", "tiny-random", "--data", "sample", "--out", str(out), *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing was created


def test_unknown_method_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["--method", "adapter"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'adapter'" in capsys.readouterr().err


def test_help_documents_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--prompt-length", "--prompt-init", "--lora-rank", "--lora-alpha", "--lora-dropout",
                 "--lora-targets", "--last-layers", "--train-lm-head", "--grad-checkpointing", "--patience",
                 "--eval-every", "--max-steps", "--precision", "--resume", "--device", "--seed"):
        assert flag in text
    assert "(default: 8)" in text  # lora rank


def test_tiny_news_trains_up_to_30_epochs_and_epochs_overrides_every_preset():
    def epochs(model, method, given=None):
        config = RunConfig()
        config.model.model, config.method.method, config.train.epochs = model, method, given
        return config.max_epochs()

    assert [epochs("tiny-news", m) for m in ("prompt", "prefix", "lora", "last-layers", "full")] == [30] * 5
    assert [epochs("gpt2", m) for m in ("prompt", "lora", "full")] == [10, 10, 10]
    assert epochs("tiny-news", "lora", 3) == epochs("gpt2", "lora", 3) == 3
