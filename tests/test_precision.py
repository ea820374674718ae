"""Mixed precision on a CPU, where torch allows it: bf16 and fp16 autocast training and evaluation, the fp16
GradScaler's skip / step / update with real scaled gradients, clipping after unscaling, and copies to the device.

These are the GPU's code paths (torch.amp.GradScaler("cpu") and CPU autocast in fp16 exist since torch 2.3);
only their speed, and fp16's overflow behaviour at GPT-2 small's size, need a GPU.
"""

import json
import math

import pytest
import torch

from conftest import tiny_config
from minisumm import methods
from minisumm.errors import run_cli
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.loss import label_loss as plain_label_loss
from minisumm.tools.training_run import fit, record, start, train
from minisumm.training import train_step


def fp16_run(tmp_path, fused: bool):
    """A full fine-tuning run in fp16 on the CPU as train.py sets it up, not started; no dropout, no validation
    in steps."""
    config = tiny_config("full", tmp_path, max_steps=5, eval_every=1000, precision="fp16", lr=1e-2)
    config.model.dropout = 0.0
    r = start(config, tmp_path / "run", show_progress=False)
    # fused: the GPU's AdamW kernel, which takes the scaler's inf flag itself (it runs on a CPU too)
    r.t.optimizer = torch.optim.AdamW(r.t.params, lr=1e-2, fused=fused)
    return r


def logged_grad_norm(r):
    records = [json.loads(line) for line in (r.run.path / "metrics.jsonl").read_text().splitlines()]
    return [x for x in records if x["type"] == "train"][-1]["grad_norm"]


@pytest.mark.parametrize("fused", [False, True])
def test_an_overflowed_fp16_step_is_skipped_and_the_scale_halves(tmp_path, fused):
    r = fp16_run(tmp_path, fused)
    t = r.t
    t.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # fp16 gradients overflow at this scale
    before = [p.detach().clone() for p in t.params]
    step = train_step(t)
    record(r, step)  # as train.py logs it
    assert not math.isfinite(step.grad_norm)
    assert logged_grad_norm(r) is None  # not finite: strict JSON writes it as null
    assert all(torch.equal(a, b) for a, b in zip(before, t.params))  # skipped
    assert t.scaler.get_scale() == 2.0**39 and all(p.grad is None for p in t.params)

    t.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)  # the next step at a sane scale updates
    assert math.isfinite(train_step(t).grad_norm)
    assert not all(torch.equal(a, b) for a, b in zip(before, t.params))
    assert t.scaler.get_scale() == 2.0**10  # grows only after 2,000 clean steps


@pytest.mark.parametrize("fused", [False, True])
def test_clipping_sees_the_unscaled_gradients(tmp_path, fused, monkeypatch):
    """With the loss scaled by 1024, the norm logged is the true one and the update gets gradients clipped to
    --max-grad-norm; clipping before unscaling would log 1024 x the norm and step with max_norm / 1024. The true
    norm is worked out outside the loop: step 0's micro-batches through the plain loss, unscaled."""
    t = fp16_run(tmp_path, fused).t
    micro_batches = t.batches.for_step(0)
    tokens = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro_batches)
    for batch in micro_batches:
        with torch.autocast("cpu", dtype=torch.float16):
            loss_sum, _ = plain_label_loss(t.model, **batch)
        (loss_sum / tokens).backward()
    true_norm = float(torch.nn.utils.get_total_norm([p.grad for p in t.params]))
    t.model.zero_grad(set_to_none=True)

    stepped = []
    real_step = type(t.optimizer).step
    monkeypatch.setattr(type(t.optimizer), "step", lambda self, *a, **k: (
        stepped.append(float(torch.nn.utils.get_total_norm([p.grad for p in t.params]))), real_step(self, *a, **k))[1])
    t.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    t.config.train.max_grad_norm = max_norm = true_norm / 4
    assert train_step(t).grad_norm == pytest.approx(true_norm, rel=1e-2)
    assert stepped == [pytest.approx(max_norm, rel=1e-3)]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_training_and_evaluation_on_cpu(precision, tmp_path):
    """Autocast is on (the loss moves off fp32's by a little, not by nothing), weights stay fp32, the loss
    after two steps matches fp32's, and evaluate.py scores the run in the same precision."""
    runs = {}
    for name in ("fp32", precision):
        config = tiny_config("lora", tmp_path, max_steps=2, eval_every=2, precision=name, lr=1e-2)
        config.model.dropout = 0.0
        trainer = start(config, tmp_path / name, show_progress=False)
        runs[name] = fit(trainer)
        trained = methods.trainable_state_dict(trainer.t.model)
        assert {v.dtype for v in trained.values()} == {torch.float32}
        first = json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[1])  # step 0 validation
        runs[name]["baseline"] = first["val_loss"]
    low, full = runs[precision], runs["fp32"]
    assert low["precision"] == precision
    assert low["baseline"] != full["baseline"] and low["baseline"] == pytest.approx(full["baseline"], rel=2e-2)
    assert low["best_val_loss"] == pytest.approx(full["best_val_loss"], rel=2e-2)

    assert run_cli(evaluate_main, [str(tmp_path / precision), "--split", "validation", "--precision", precision,
                                   "--max-new-tokens", "6", "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / precision / "eval" / "metrics.json").read_text())
    assert metrics["precision"] == precision
    assert metrics["loss"] == pytest.approx(low["best_val_loss"], rel=2e-2)


def test_no_asynchronous_copy_from_unpinned_memory(tmp_path, monkeypatch):
    """`non_blocking=True` is asynchronous only from pinned memory; from pageable memory it is a synchronous
    copy that says otherwise. No copy in a training step, a validation or decoding asks for it unpinned."""
    offending = []
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        if kwargs.get("non_blocking") and self.device.type == "cpu" and not self.is_pinned():
            offending.append(tuple(self.shape))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    run = tmp_path / "run"
    train(tiny_config("lora", tmp_path, max_steps=1), run, show_progress=False)
    assert run_cli(evaluate_main, [str(run), "--split", "validation", "--limit", "2", "--max-new-tokens", "4",
                                   "--device", "cpu"]) == 0
    assert offending == []
