"""Training faults: NaN losses, out of memory, signals, a save killed half way, a full disk.

Each case ends in one clear sentence or a documented recovery, and the last good checkpoint survives.
"""

import errno
import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_config
from minisumm import training
from minisumm.tools import atomic, checkpoint
from minisumm.tools.checkpoint import load_checkpoint
from minisumm.tools.checkpoint import read_config
from minisumm.errors import MinisummError
from minisumm.tools.resume import save_last
from minisumm.tools.training_run import fit, record, start, train
from minisumm.training import train_step, validate


def weights(folder):
    return load_file(folder / "weights.safetensors")


def state_step(run):
    return json.loads((run / "last" / "trainer_state.json").read_text())["trainer"]["step"]


def trained_run(tmp_path, steps=2):
    """A run that has saved last/ at step `steps` (validated after every step), its `TrainingRun` and folder."""
    run = tmp_path / "run"
    trainer = start(tiny_config("lora", tmp_path, max_steps=steps + 10, eval_every=1000, lr=1e-2), run,
                    show_progress=False)
    record(trainer, validate(trainer.t))  # a validation is recorded with best/ and last/
    for _ in range(steps):
        record(trainer, train_step(trainer.t))  # eval_every 1000: no validation is due on its own
        record(trainer, validate(trainer.t))
    return trainer, run, None


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    trainer, run, bar = trained_run(tmp_path)
    before = weights(run / "last")
    real = trainer.t.loss_module.loss_fn
    monkeypatch.setattr(trainer.t.loss_module, "loss_fn",
                        lambda *a, **k: (real(*a, **k)[0] * float("nan"), real(*a, **k)[1]))
    with pytest.raises(MinisummError, match=r"loss became nan at step 2.*last saved checkpoint \(last/\)"):
        train_step(trainer.t)
    after = weights(run / "last")
    assert all(torch.equal(before[k], after[k]) for k in before) and state_step(run) == 2


def test_fp16_overflow_skips_the_step_through_the_grad_scaler(tmp_path, monkeypatch):
    trainer, run, bar = trained_run(tmp_path, steps=1)
    t = trainer.t
    t.precision = "fp16"
    t.scaler = torch.amp.GradScaler("cpu", enabled=True)
    real = t.loss_module.loss_fn
    monkeypatch.setattr(t.loss_module, "loss_fn", lambda *a, **k: (real(*a, **k)[0] * float("inf"), real(*a, **k)[1]))
    monkeypatch.setattr(training, "autocast", lambda *a: torch.autocast("cpu", enabled=False))
    params_before = [p.detach().clone() for p in t.params]
    scale_before = t.scaler.get_scale()
    train_step(t)  # no error: the scaler sees inf gradients and skips the update
    assert all(torch.equal(a, b) for a, b in zip(params_before, t.params))
    assert t.scaler.get_scale() < scale_before


def test_out_of_memory_suggests_smaller_batches_or_checkpointing(tmp_path, monkeypatch):
    def oom(self, *batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training.LossModule, "forward", oom)
    trainer = start(tiny_config("lora", tmp_path, max_steps=3), tmp_path / "run", show_progress=False)
    with pytest.raises(MinisummError, match=r"--batch-size 2 --grad-accum 4.*--grad-checkpointing"):
        fit(trainer)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_save_last_and_exit_cleanly(tmp_path, monkeypatch, sig):
    real_lr_at = training.lr_at

    def send(step, **kwargs):
        if step == 1:
            os.kill(os.getpid(), sig)
        return real_lr_at(step, **kwargs)

    monkeypatch.setattr(training, "lr_at", send)
    run = tmp_path / "run"
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # SIG_IGN when run in background
    result = train(tiny_config("lora", tmp_path, max_steps=50), run, show_progress=False)
    assert result["interrupted"] == sig.name and f"--resume {run}" in result["message"]
    assert state_step(run) == 2  # the step in flight finished, then last/ was saved
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


def test_process_killed_in_the_middle_of_a_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer, run, bar = trained_run(tmp_path)
    before = weights(run / "last")
    calls = []

    def die_on_second_file(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for the process dying while writing
        return real_save(tensors, path, metadata=metadata)

    real_save = checkpoint.save_file
    monkeypatch.setattr(checkpoint, "save_file", die_on_second_file)
    train_step(trainer.t)
    with pytest.raises(KeyboardInterrupt):
        save_last(trainer.t, trainer.run)
    after = weights(run / "last")
    assert all(torch.equal(before[k], after[k]) for k in before) and state_step(run) == 2
    load_checkpoint(run / "last")  # still a whole, loadable checkpoint
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]  # the half-written copy was removed


def test_death_between_the_two_renames_falls_back_to_the_old_folder(tmp_path, monkeypatch):
    trainer, run, bar = trained_run(tmp_path)
    before = weights(run / "last")
    real_rename = os.rename
    calls = []

    def die_on_second_rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", die_on_second_rename)
    train_step(trainer.t)
    with pytest.raises(KeyboardInterrupt):
        save_last(trainer.t, trainer.run)
    monkeypatch.setattr(atomic.os, "rename", real_rename)
    assert not (run / "last").exists() and (run / "last.old").is_dir()
    _, _, config = load_checkpoint(run / "last")  # readers fall back to last.old
    assert config.method.method == "lora"
    resumed = start(read_config(run), run, resume=True, show_progress=False)
    assert resumed.t.state.step == 2
    assert all(torch.equal(before[k], v.cpu()) for k, v in
               training.methods.trainable_state_dict(resumed.t.model).items())
    save_last(resumed.t, resumed.run)
    assert (run / "last").is_dir() and not (run / "last.old").exists()


def test_full_disk_is_one_sentence_and_the_previous_checkpoint_stays(tmp_path, monkeypatch):
    trainer, run, bar = trained_run(tmp_path)
    before = weights(run / "last")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    train_step(trainer.t)
    with pytest.raises(MinisummError, match=r"Could not write last/ .*No space left on device.*intact"):
        save_last(trainer.t, trainer.run)
    after = weights(run / "last")
    assert all(torch.equal(before[k], after[k]) for k in before)
