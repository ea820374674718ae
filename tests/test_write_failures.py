"""A full disk anywhere minisumm writes ends in one `error:` line (exit 2) and keeps what was there.

On a real tmpfs filled up part-way (where the machine lets the test mount one), and with ENOSPC or a
SafetensorError injected into the writers (everywhere).
"""

import errno
import json
import os

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

import minisumm.tools.atomic
from conftest import fill, tiny_config
from minisumm import training
from minisumm.tools.resume import save_last
from minisumm.training import train_step
from minisumm.tools import checkpoint, compare, token_cache
from minisumm.errors import run_cli
from minisumm.tools.export import main as export_main
from minisumm.tools.loading import load_model_and_tokenizer
from minisumm.cli.train import main as train_main
from test_checkpoint import saved
from test_cli import SMALL
from test_compare import write_run


def one_error_line(capsys, needle="No space left on device") -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith(("note:", "warning:"))]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    return lines[0]


def weights(folder):
    return load_file(folder / "weights.safetensors")


def test_disk_filling_up_during_training_stops_in_one_line_and_resume_continues(small_disk, tmp_path, capsys,
                                                                                monkeypatch):
    run = small_disk / "run"
    filled = []
    real_lr_at = training.lr_at

    def fill_at_step_2(step, **kwargs):  # another program fills the disk while the third step trains
        if step == 2 and not filled:
            filled.append(fill(small_disk))
        return real_lr_at(step, **kwargs)

    monkeypatch.setattr(training, "lr_at", fill_at_step_2)
    flags = [*SMALL, "--method", "lora", "--cache-dir", str(tmp_path / "cache"), "--eval-every", "1"]
    assert run_cli(train_main, [*flags, "--max-steps", "4", "--out", str(run)]) == 2
    one_error_line(capsys)
    assert json.loads((run / "last" / "trainer_state.json").read_text())["trainer"]["step"] == 2
    weights(run / "last")
    assert not [p for p in run.iterdir() if ".tmp" in p.name]  # no half-written checkpoint left

    filled[0].unlink()  # space again: the run goes on from its last checkpoint
    monkeypatch.setattr(training, "lr_at", real_lr_at)
    assert run_cli(train_main, ["--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 4


def test_export_and_compare_on_a_full_disk_write_nothing_and_say_so(small_disk, tmp_path, capsys, monkeypatch):
    folder, _ = saved(tmp_path, "lora")
    write_run(tmp_path / "runs" / "lora-1", "lora", 294_912, 124_734_720)
    (small_disk / "report.md").write_text("# minisumm comparison\n\nthe old report\n")  # compare's own
    fill(small_disk)
    assert run_cli(export_main, [str(folder), "--to", "hf", str(small_disk / "hf")]) == 2
    one_error_line(capsys)
    monkeypatch.setattr(compare, "_pyplot", lambda: None)
    assert run_cli(compare.main, [str(tmp_path / "runs" / "lora-1"), "--out", str(small_disk / "report.md")]) == 2
    one_error_line(capsys)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "report.md"]
    assert (small_disk / "report.md").read_text() == "# minisumm comparison\n\nthe old report\n"


def test_token_cache_on_a_full_disk_warns_and_the_data_is_still_used(small_disk, tmp_path, capsys):
    config = tiny_config("lora")
    config.data.cache_dir = str(small_disk)
    _, tokenizer = load_model_and_tokenizer("tiny-random")
    fill(small_disk)
    _, splits = token_cache.build_datasets(config.data, tokenizer, 0, 0, splits=("validation",))
    assert len(splits["validation"]) == 8
    err = capsys.readouterr().err
    assert err.startswith("warning: could not write the tokenised-data cache") and err.count("\n") == 1


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                                                   "StorageFull, message: \"No space left on device\" })")],
                         ids=["OSError", "SafetensorError"])
def test_injected_write_errors_in_a_checkpoint_save(tmp_path, monkeypatch, capsys, error):
    from test_training_faults import trained_run

    trainer, run, bar = trained_run(tmp_path)
    before = weights(run / "last")

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(checkpoint, "save_file", fail)
    train_step(trainer.t)
    assert run_cli(lambda argv: save_last(trainer.t, trainer.run), []) == 2
    one_error_line(capsys)
    after = weights(run / "last")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_injected_full_disk_for_json_and_log_writes(tmp_path, monkeypatch, capsys):
    from test_training_faults import trained_run

    trainer, run, _ = trained_run(tmp_path, steps=1)
    summary_before = (run / "config.json").read_text()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(minisumm.tools.atomic.os, "fsync", no_space)
    for write in (lambda: trainer.run.write_summary({"steps": 1}), lambda: trainer.run.create()):
        assert run_cli(lambda argv: write(), []) == 2
        one_error_line(capsys)
    assert not (run / "summary.json").exists() and (run / "config.json").read_text() == summary_before
    monkeypatch.setattr("builtins.open", no_space)
    assert run_cli(lambda argv: trainer.run.log({"type": "x"}), []) == 2
    one_error_line(capsys)
    monkeypatch.undo()
    assert not [p for p in os.listdir(run) if p.endswith(".tmp")]
