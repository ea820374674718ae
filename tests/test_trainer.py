"""The training loop: accumulation, clipping, early stopping, overfitting, resume, run folders."""

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel

from conftest import tiny_config
from minisumm import methods, training
from minisumm.tools.checkpoint import config_record, read_config
from minisumm.config import MethodConfig
from minisumm.errors import MinisummError
from minisumm.speedups.labelled_positions import label_loss
from minisumm.speedups import enable_activation_checkpointing
from minisumm.tools.loading import load_model_and_tokenizer
from minisumm.tools.training_run import fit, start, train
from minisumm.training import make_optimizer


def last_weights(run):
    return load_file(run / "last" / "weights.safetensors")


def events(run, kind):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


def test_accumulated_micro_batches_equal_one_large_batch(tmp_path, monkeypatch):
    """4 examples as 2 micro-batches of 2 give the gradient of 1 batch of 4 (token-weighted loss)."""
    grads = []
    original_step = torch.optim.AdamW.step

    def capture(self, *args, **kwargs):
        grads.append([p.grad.clone() for group in self.param_groups for p in group["params"]])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", capture)
    losses = []
    for batch_size, accum in ((4, 1), (2, 2)):
        config = tiny_config("full", tmp_path, batch_size=batch_size, grad_accum=accum, max_steps=1,
                             warmup_ratio=0.0, lr=1e-3, max_grad_norm=0.0)
        config.data.group_by_length = False
        config.model.dropout = 0.0
        run = tmp_path / f"run-{batch_size}"
        train(config, run, show_progress=False)
        losses.append(events(run, "train")[0]["loss"])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    (big,), (small,) = grads[:1], grads[1:]
    assert len(big) == len(small) > 0 and any(g.abs().sum() > 0 for g in big)
    for a, b in zip(big, small):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_clipping_bounds_the_gradient_norm(tmp_path, monkeypatch):
    seen = []
    original_step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    for max_norm in (0.0, 1e-3):  # 0 turns clipping off: the raw norm is far above 1e-3
        config = tiny_config("last-layers", tmp_path, max_steps=2, max_grad_norm=max_norm)
        train(config, tmp_path / f"run-{max_norm}", show_progress=False)
    unclipped, clipped = seen[:2], seen[2:]
    assert min(unclipped) > 1e-2
    assert max(clipped) <= 1e-3 * (1 + 1e-4)


def test_early_stopping_restores_the_best_weights(tmp_path, monkeypatch):
    scripted = iter([5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 1.0])  # baseline, then one eval per step
    monkeypatch.setattr(training, "validation_loss", lambda t: next(scripted))
    config = tiny_config("lora", tmp_path, eval_every=1, patience=3, max_steps=20, lr=1e-2)
    run = tmp_path / "run"
    trainer = start(config, run, show_progress=False)
    summary = fit(trainer)
    assert summary["steps"] == 5  # best at step 2, then 3 evaluations without improvement
    assert summary["best_step"] == 2 and summary["best_val_loss"] == 3.0 and summary["stopped_early"]
    best = load_file(run / "best" / "weights.safetensors")
    current = methods.trainable_state_dict(trainer.t.model)
    assert all(torch.equal(best[name], current[name].cpu()) for name in best)
    assert not all(torch.equal(best[name], last_weights(run)[name]) for name in best)  # last/ moved on


@pytest.mark.parametrize("method, lr", [("prompt", 0.3), ("prefix", 3e-2), ("lora", 1e-2), ("last-layers", 3e-3),
                                        ("full", 3e-3)])
def test_every_method_overfits_one_tiny_batch(method, lr):
    torch.manual_seed(0)
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    params = methods.apply(model, MethodConfig(method=method), tokenizer=tokenizer)
    config = tiny_config(method, lr=lr, weight_decay=0.0)
    optimizer = make_optimizer(params, config, torch.device("cpu"))
    ids = torch.tensor([tokenizer.encode("The mayor of Lowtown opened a bridge. TL;DR: bridge opened")])
    labels = ids.clone()
    labels[:, :-14] = -100
    model.eval()  # no dropout: the only change between steps is the update
    losses = []
    for _ in range(40):
        loss_sum, count = label_loss(model, ids, torch.ones_like(ids), labels)
        loss = loss_sum / count
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def resumable_config(method, tmp_path):
    config = tiny_config(method, tmp_path, max_steps=6, eval_every=2, lr=1e-2)
    config.method.prefix_projection = True  # prefix: the MLP and its optimizer state in last/, folded in best/
    return config


@pytest.mark.parametrize("method", ["lora", "prefix"])
def test_resume_equals_uninterrupted_bitwise(tmp_path, monkeypatch, method):
    config = resumable_config(method, tmp_path)
    straight = tmp_path / "straight"
    train(config, straight, show_progress=False)

    real_lr_at = training.lr_at

    def interrupt_at_step_3(step, **kwargs):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C during step 3
        return real_lr_at(step, **kwargs)

    monkeypatch.setattr(training, "lr_at", interrupt_at_step_3)
    broken = tmp_path / "broken"
    result = train(resumable_config(method, tmp_path), broken, show_progress=False)
    assert result["interrupted"] == "SIGINT" and result["step"] == 4
    monkeypatch.setattr(training, "lr_at", real_lr_at)
    summary = train(read_config(broken), broken, resume=True, show_progress=False)
    assert summary["steps"] == 6
    for folder in ("last", "best"):
        a = load_file(straight / folder / "weights.safetensors")
        b = load_file(broken / folder / "weights.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), folder
    assert events(straight, "eval")[-1]["val_loss"] == events(broken, "eval")[-1]["val_loss"]


def test_non_empty_run_folder_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    with pytest.raises(MinisummError, match="is not empty; pass --resume"):
        start(tiny_config("lora", tmp_path, max_steps=1), run, show_progress=False)
    assert (run / "notes.txt").read_text() == "keep me"


def test_run_folder_contents_and_summary(tmp_path):
    run = tmp_path / "run"
    summary = train(tiny_config("prompt", tmp_path, max_steps=3, eval_every=2), run, show_progress=False)
    assert {"config.json", "best", "last", "metrics.jsonl", "summary.json"} <= {p.name for p in run.iterdir()}
    assert set(load_file(run / "best" / "weights.safetensors")) == {"soft_prompt.embedding"}
    assert {p.name for p in (run / "last").iterdir()} == {"config.json", "weights.safetensors",
                                                         "optimizer.safetensors", "rng.safetensors",
                                                         "trainer_state.json"}
    for key in ("method", "trainable_params", "best_val_loss", "steps", "epochs", "wall_time_s", "tokens_per_s",
                "peak_memory_mb", "checkpoint_bytes", "device", "precision"):
        assert key in summary
    assert summary["trainable_params"] == 20 * 64 and summary["checkpoint_bytes"] < 20_000
    assert json.loads((run / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert [e["step"] for e in events(run, "eval")] == [0, 2, 3]


@pytest.mark.parametrize("method", ["prompt", "prefix", "lora", "last-layers"])
def test_gradient_checkpointing_gives_the_same_gradients(method):
    """On a 4-block model; last-layers trains blocks 2 and 3. Block 3 (the last) runs outside checkpointing,
    at the labelled positions only (`minisumm.speedups.labelled_positions.last_block_at`)."""
    grads, block_calls = [], []
    for checkpointing in (False, True):
        _, tokenizer = load_model_and_tokenizer("tiny-random")
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=257, bos_token_id=256, eos_token_id=256, n_positions=128,
                                           n_embd=32, n_layer=4, n_head=2, attn_pdrop=0.0, resid_pdrop=0.0,
                                           embd_pdrop=0.0))
        params = methods.apply(model, MethodConfig(method=method, lora_dropout=0.0, last_layers=2),
                               tokenizer=tokenizer)
        if checkpointing:
            enable_activation_checkpointing(model)
        model.train()
        calls = [0, 0, 0]
        for index in range(3):
            model.transformer.h[index].attn.register_forward_pre_hook(
                lambda *args, index=index: calls.__setitem__(index, calls[index] + 1))
        ids = torch.tensor([tokenizer.encode("Checkpointing recomputes, it does not change the maths.")])
        labels = ids.clone()
        labels[:, :20] = -100
        loss_sum, count = label_loss(model, ids, torch.ones_like(ids), labels)
        (loss_sum / count).backward()
        grads.append([p.grad.clone() for p in params])
        block_calls.append(calls)
    # with checkpointing a block runs again in the backward pass, unless nothing below it needs a gradient:
    # last-layers never recomputes (or backpropagates through) its frozen blocks 0 and 1
    assert block_calls == [[1, 1, 1], [1, 1, 2] if method == "last-layers" else [2, 2, 2]]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_run_that_fails_to_start_leaves_nothing_and_keeps_what_it_would_overwrite(tmp_path):
    config = tiny_config("lora", tmp_path, max_steps=1)
    config.data.data = str(tmp_path / "missing.jsonl")
    run = tmp_path / "run"
    with pytest.raises(MinisummError, match="does not exist"):
        start(config, run, show_progress=False)
    assert not run.exists()
    run.mkdir()  # an earlier run (--overwrite replaces only what minisumm wrote)
    (run / "summary.json").write_text("{}")
    (run / "config.json").write_text(json.dumps(config_record(tiny_config("lora"))))
    with pytest.raises(MinisummError, match="does not exist"):
        start(config, run, overwrite=True, show_progress=False)
    assert (run / "summary.json").read_text() == "{}"
