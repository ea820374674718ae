"""How the training loop wires correct parts together, each against a reference the loop does not compute.

- the learning rates AdamW actually used, against `lr_at` (itself checked by hand in test_schedule.py) with the
  configured warmup and floor;
- accumulated micro-batches whose summaries have different lengths, against one big batch through the plain
  loss (`minisumm.loss`), computed outside the loop;
- the optimizer's weight-decay groups, against the tensors' dimensions;
- the gradient each step starts from: a second step's gradient against the plain loss at its weights.

Gradients are read where the update would use them: in an optimizer step pre-hook, torch's public seam.
"""

import json

import pytest
import torch

from conftest import tiny_config
from minisumm.data import SAMPLE_DIR
from minisumm.loss import label_loss
from minisumm.model import build
from minisumm.schedule import lr_at
from minisumm.tools.loading import load
from minisumm.training import fit, setup, train_step

SUMMARIES = ["Yes.", "The bridge opened on Monday.", "Police said nobody was hurt in the fire at the mill.",
             "A council in the north voted to close two libraries, four pools and a museum to save £3 million.",
             "Rain.", "Exam results rose for a third year running at the town's two schools."]


def varied_summaries(tmp_path):
    """Train and validation files whose summaries run from 4 to 96 characters (byte tokens: as many labels)."""
    articles = [json.loads(line)["article"] for line in open(SAMPLE_DIR / "train.jsonl")][:18]
    rows = [{"id": str(i), "article": a, "highlights": SUMMARIES[i % len(SUMMARIES)]} for i, a in enumerate(articles)]
    paths = []
    for name, part in (("train", rows[:12]), ("validation", rows[12:])):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in part))
        paths.append(str(path))
    return paths


def full_run(tmp_path, **train):
    """Full fine-tuning on tiny-random, no dropout, no validation inside the steps, set up but not started
    (the lesson's own `setup`: no run folder)."""
    config = tiny_config("full", tmp_path, eval_every=1000, lr=1e-2, max_grad_norm=0.0, epochs=10, **train)
    config.model.dropout = 0.0
    config.data.data = ""
    config.data.train_file, config.data.validation_file = varied_summaries(tmp_path)
    config.data.train_size = config.data.validation_size = "all"
    config.data.max_summary_tokens = 128  # no summary is capped: label counts differ
    config.data.group_by_length = False
    return setup(config, load=load)


def record_gradients(t) -> list[dict[str, torch.Tensor]]:
    """Each optimizer step's gradients by parameter name, as the update receives them."""
    names = {id(p): name for name, p in t.model.named_parameters()}
    seen = []
    t.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: seen.append(
        {names[id(p)]: p.grad.clone() for group in optimizer.param_groups for p in group["params"]}))
    return seen


def plain_gradient(t, micro_batches) -> dict[str, torch.Tensor]:
    """The mean token loss of all `micro_batches` as ONE batch, through the plain loss, on a fresh copy of
    the model at `t`'s current weights."""
    reference, *_ = build(t.config, load)
    reference.load_state_dict(t.model.state_dict())
    reference.train()
    tokens = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro_batches)
    total = sum(label_loss(reference, **batch)[0] for batch in micro_batches)
    (total / tokens).backward()
    return {name: p.grad for name, p in reference.named_parameters()}


def assert_same_gradients(got, expected):
    assert got.keys() == expected.keys()
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-7, msg=name)


def test_the_learning_rates_the_optimizer_used_follow_lr_at_with_warmup_and_floor(tmp_path):
    t = full_run(tmp_path, max_steps=8, warmup_ratio=0.25, min_lr_ratio=0.1)
    used = []
    t.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: used.append(
        {group["lr"] for group in optimizer.param_groups}))
    list(fit(t))
    expected = [lr_at(step, peak=1e-2, warmup_steps=2, total_steps=8, min_lr=1e-3) for step in range(8)]
    assert used == [{lr} for lr in expected]
    assert expected[0] == pytest.approx(5e-3) and expected[1] == pytest.approx(1e-2)  # warmup: 2 of 8 steps
    assert expected[-1] > 1e-3  # the floor is 10% of the peak, approached from above


def test_accumulated_micro_batches_with_different_label_counts_give_one_big_batch_s_gradient(tmp_path):
    t = full_run(tmp_path, batch_size=2, grad_accum=3, max_steps=1)
    micro_batches = t.batches.for_step(0)
    counts = [int((b["labels"][:, 1:] != -100).sum()) for b in micro_batches]
    assert len(micro_batches) == 3 and len(set(counts)) == 3, counts  # a mean of means would differ
    expected = plain_gradient(t, micro_batches)
    seen = record_gradients(t)
    train_step(t)
    assert_same_gradients(seen[0], expected)


def test_each_step_starts_from_zero_gradients(tmp_path):
    t = full_run(tmp_path, batch_size=2, grad_accum=2, max_steps=3)
    seen = record_gradients(t)
    train_step(t)
    expected = plain_gradient(t, t.batches.for_step(1))  # at the weights after step 1
    train_step(t)
    assert_same_gradients(seen[1], expected)


@pytest.mark.parametrize("decay_1d", [False, True])
def test_weight_decay_falls_exactly_on_tensors_of_two_or_more_dimensions(tmp_path, decay_1d):
    t = full_run(tmp_path, weight_decay=0.05, decay_1d=decay_1d)
    decayed = {id(p) for g in t.optimizer.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    undecayed = {id(p) for g in t.optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert sum(len(g["params"]) for g in t.optimizer.param_groups) == len(t.params)  # each tensor once
    assert decayed | undecayed == {id(p) for p in t.params}
    assert decayed == {id(p) for p in t.params if p.ndim >= 2 or decay_1d}
    assert any(p.ndim == 1 for p in t.params) and any(p.ndim == 2 for p in t.params)  # both kinds exist
