"""--tensorboard: the scalars of metrics.jsonl records, written through a stand-in for torch's SummaryWriter
(tensorboard itself is an optional extra), and one sentence when the package is missing."""

import sys
import types

import pytest

from minisumm.errors import MinisummError
from minisumm.tools import tensorboard
from minisumm.tools.tensorboard import TensorBoardLog


class FakeSummaryWriter:
    made = []

    def __init__(self, log_dir, purge_step=None):
        self.log_dir, self.purge_step, self.calls = log_dir, purge_step, []
        FakeSummaryWriter.made.append(self)

    def add_scalar(self, tag, value, global_step):
        self.calls.append((tag, value, global_step))

    def flush(self):
        self.calls.append("flush")

    def close(self):
        self.calls.append("close")


@pytest.fixture
def fake_writer(monkeypatch):
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = FakeSummaryWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    FakeSummaryWriter.made = []
    return FakeSummaryWriter


# what the training loop logs to metrics.jsonl
TRAIN = {"type": "train", "step": 10, "epoch": 0.5, "loss": 2.5, "lr": 2e-4, "grad_norm": 0.75, "tokens_per_s": 5120.0}
EVAL = {"type": "eval", "step": 10, "epoch": 0.5, "val_loss": 2.75, "best_loss": 2.75, "improved": True,
        "early_stop": False}
OTHERS = [{"type": "start", "total_steps": 100, "steps_per_epoch": 20}, {"type": "resume_overrides",
          "settings": {"max_steps": 4}}, {"type": "interrupted", "step": 12, "signal": "SIGINT"}]


def test_each_scalar_of_the_train_and_eval_records_is_written_at_its_step(tmp_path, fake_writer):
    log = TensorBoardLog(tmp_path / "run")
    for record in [*OTHERS, TRAIN, EVAL, {**TRAIN, "step": 20, "loss": 2.0, "grad_norm": 1.5}]:
        log.write(record)
    log.close()
    (writer,) = fake_writer.made
    assert writer.log_dir == str(tmp_path / "run" / "tensorboard") and writer.purge_step is None
    assert writer.calls == [
        ("train/loss", 2.5, 10), ("train/lr", 2e-4, 10), ("train/grad_norm", 0.75, 10),
        ("train/tokens_per_s", 5120.0, 10), ("eval/val_loss", 2.75, 10), ("eval/best_loss", 2.75, 10), "flush",
        ("train/loss", 2.0, 20), ("train/lr", 2e-4, 20), ("train/grad_norm", 1.5, 20),
        ("train/tokens_per_s", 5120.0, 20), "close"]


def test_a_resumed_run_hides_what_the_interrupted_one_logged_after_its_checkpoint(tmp_path, fake_writer):
    TensorBoardLog(tmp_path, purge_step=40)
    assert fake_writer.made[0].purge_step == 40


def test_a_missing_key_is_skipped_not_written_as_zero(tmp_path, fake_writer):
    log = TensorBoardLog(tmp_path)
    log.write({"type": "train", "step": 3, "loss": 1.5, "lr": 1e-3})
    assert fake_writer.made[0].calls == [("train/loss", 1.5, 3), ("train/lr", 1e-3, 3)]


def test_without_the_tensorboard_package_it_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as where it is not installed
    message = ("--tensorboard needs the tensorboard package: pip install 'minisumm[tensorboard]' (or leave out "
               "--tensorboard; metrics.jsonl holds the same numbers).")
    with pytest.raises(MinisummError) as raised:
        tensorboard.require()
    assert str(raised.value) == message
    with pytest.raises(MinisummError, match=r"pip install 'minisumm\[tensorboard\]'"):
        TensorBoardLog(tmp_path)
    assert not (tmp_path / "tensorboard").exists()


def test_a_training_run_with_tensorboard_writes_what_metrics_jsonl_holds(tmp_path, fake_writer):
    import json

    from conftest import tiny_config
    from minisumm.tools.training_run import train

    run = tmp_path / "run"
    config = tiny_config("lora", tmp_path, max_steps=3, eval_every=2, tensorboard=True)
    train(config, run, show_progress=False)
    (writer,) = fake_writer.made
    assert writer.log_dir == str(run / "tensorboard") and writer.calls[-1] == "close"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = [(f"{r['type']}/{key}", r[key], r["step"]) for r in records
                for key in {"train": ("loss", "lr", "grad_norm", "tokens_per_s"),
                            "eval": ("val_loss", "best_loss")}.get(r["type"], ())]
    assert [c for c in writer.calls if c not in ("flush", "close")] == expected
    assert [step for tag, _, step in expected if tag == "eval/val_loss"] == [0, 2, 3]
