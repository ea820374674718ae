"""Prefix tuning against a forward written out by hand here (layer norm, attention over prefix + text, MLP),
the base model (an empty prefix), its folded form, activation checkpointing, and a training run's best/."""

import json
import math

import pytest
import torch

from conftest import tiny_config
from test_checkpoint import saved
from minisumm import methods
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.config import MethodConfig
from minisumm.errors import MinisummError, run_cli
from minisumm.loss import label_loss as plain_loss
from minisumm.methods.prefix import Prefix
from minisumm.model import body
from minisumm.speedups import enable_activation_checkpointing
from minisumm.speedups.labelled_positions import label_loss as fast_loss
from minisumm.tools.checkpoint import load_checkpoint, read_tensors
from minisumm.tools.export import main as export_main
from minisumm.tools.loading import load_model_and_tokenizer
from minisumm.tools.training_run import train


def prefixed(projection=False, length=3, seed=0):
    """tiny-random with a prefix moved well away from its start, so that it changes the outputs."""
    torch.manual_seed(seed)
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    trainable = methods.apply(model, MethodConfig(method="prefix", prefix_length=length,
                                                  prefix_projection=projection), tokenizer=tokenizer)
    with torch.no_grad():
        for p in trainable:
            p.add_(torch.randn_like(p) * 0.5)
    return model.eval(), trainable


def hand_forward(model, ids: list[int]) -> torch.Tensor:
    """GPT-2 on one unpadded row, written out: the text at positions P, P+1, ..., and in every layer the
    prefix's P keys and values before the text's, all visible to every text token. (T, C) final hidden states."""
    t, prefix = model.transformer, model.prefix
    P, H = prefix.length, model.config.n_head
    kv = prefix.flat().view(P, model.config.n_layer, 2, H, -1)  # (P, L, 2, H, D): PEFT's row layout
    x = t.wte(torch.tensor(ids)) + t.wpe(torch.arange(P, P + len(ids)))  # (T, C)
    T, C = x.shape
    for layer, block in enumerate(t.h):
        q, k, v = block.attn.c_attn(block.ln_1(x)).split(C, dim=-1)  # (T, C) each
        q, k, v = (z.view(T, H, -1).transpose(0, 1) for z in (q, k, v))  # (H, T, D)
        k = torch.cat([kv[:, layer, 0].transpose(0, 1), k], dim=1)  # (H, P+T, D)
        v = torch.cat([kv[:, layer, 1].transpose(0, 1), v], dim=1)
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])  # (H, T, P+T)
        future = torch.ones(T, P + T, dtype=torch.bool).triu(P + 1)  # text token i sees keys 0 … P+i
        attended = scores.masked_fill(future, float("-inf")).softmax(-1) @ v  # (H, T, D)
        x = x + block.attn.c_proj(attended.transpose(0, 1).reshape(T, C))
        x = x + block.mlp(block.ln_2(x))
    return t.ln_f(x)


@pytest.mark.parametrize("projection", [False, True])
def test_left_padded_batch_equals_the_hand_written_forward_row_by_row(projection):
    model, _ = prefixed(projection)
    rows = [[5, 9, 14, 2, 77, 31], [8, 3, 60], [40, 41]]
    ids = torch.zeros(3, 6, dtype=torch.long)
    mask = torch.zeros(3, 6, dtype=torch.long)
    for r, row in enumerate(rows):  # left padding, as in decoding
        ids[r, 6 - len(row):], mask[r, 6 - len(row):] = torch.tensor(row), 1
    with torch.no_grad():
        hidden, full_mask, _ = body(model, ids, mask)
        assert full_mask.shape == (3, 3 + 6) and full_mask[:, :3].all()
        for r, row in enumerate(rows):
            torch.testing.assert_close(hidden[r, 6 - len(row):], hand_forward(model, row), rtol=1e-5, atol=1e-5)


def test_an_empty_prefix_leaves_gpt2_as_it_was_and_a_zero_prefix_does_not():
    model, _ = load_model_and_tokenizer("tiny-random")
    ids = torch.randint(0, 256, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    with torch.no_grad():
        base = body(model, ids, mask)[0]
        L, C, H = model.config.n_layer, model.config.n_embd, model.config.n_head
        model.add_module("prefix", Prefix(torch.zeros(0, L * 2 * C), L, H))
        torch.testing.assert_close(body(model, ids, mask)[0], base, rtol=0, atol=1e-6)
        # zero keys score 0 and still take softmax weight: every attention output shrinks
        model.add_module("prefix", Prefix(torch.zeros(2, L * 2 * C), L, H))
        assert (body(model, ids, mask)[0] - base).abs().max() > 1e-2


def test_counts_and_layout():
    model, trainable = prefixed(projection=False, length=5)
    L, H, C = model.config.n_layer, model.config.n_head, model.config.n_embd
    assert [tuple(p.shape) for p in trainable] == [(5, L * 2 * C)]
    kv = model.prefix.keys_values()
    assert kv.shape == (L, 2, H, 5, C // H)
    # row p, layer l, value (1), head h holds columns l·2C + C + h·D … : PEFT's view (P, 2L, H, D), pair 2l+1
    D = C // H
    torch.testing.assert_close(kv[1, 1, 0, 4], model.prefix.embedding[4, 1 * 2 * C + C: 1 * 2 * C + C + D])
    projected, trainable = prefixed(projection=True, length=5)
    assert sum(p.numel() for p in trainable) == 5 * C + (C * C + C) + (C * L * 2 * C + L * 2 * C)


def test_the_text_initialisation_is_gpt2_s_own_keys_and_values_for_the_text():
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    methods.apply(model, MethodConfig(method="prefix", prefix_length=4, prompt_init_text="News:"),
                  tokenizer=tokenizer)
    ids = tokenizer("News:", add_special_tokens=False)["input_ids"][:4]
    with torch.no_grad():
        out = model.transformer(input_ids=torch.tensor([ids]), use_cache=True)
    layer = out.cache.layers[1]
    torch.testing.assert_close(model.prefix.keys_values()[1, 0], layer.keys[0], rtol=0, atol=0)
    torch.testing.assert_close(model.prefix.keys_values()[1, 1], layer.values[0], rtol=0, atol=0)


def test_a_folded_projection_gives_the_same_outputs_without_the_mlp():
    model, _ = prefixed(projection=True)
    ids = torch.randint(0, 256, (2, 7))
    config = tiny_config("prefix")
    config.method.prefix_projection, config.method.prefix_length = True, 3
    folded_config, folded = methods.for_inference(config, methods.trainable_state_dict(model), 2, 2)
    assert folded_config.method.prefix_projection is False and config.method.prefix_projection is True
    assert list(folded) == ["prefix.embedding"] and folded["prefix.embedding"].shape == (3, 2 * 2 * 64)
    plain, tokenizer = load_model_and_tokenizer("tiny-random")
    methods.apply(plain, folded_config.method, tokenizer=tokenizer)
    methods.load_trainable_state_dict(plain, folded)
    with torch.no_grad():
        torch.testing.assert_close(body(plain, ids, torch.ones_like(ids))[0],
                                   body(model, ids, torch.ones_like(ids))[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss_fn", [plain_loss, fast_loss], ids=["plain", "labelled-positions"])
def test_activation_checkpointing_keeps_the_prefix_and_the_gradients(loss_fn):
    ids = torch.randint(0, 256, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :5] = -100
    results = []
    for checkpointing in (False, True):
        model, trainable = prefixed(projection=True)
        if checkpointing:
            enable_activation_checkpointing(model)
        model.train()  # checkpointing acts in training mode only; tiny-random has no dropout
        loss_sum, count = loss_fn(model, ids, mask, labels)
        results.append((loss_sum.detach(), torch.autograd.grad(loss_sum / count, trainable)))
    torch.testing.assert_close(results[1][0], results[0][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_projected_run_saves_best_folded_and_last_whole(tmp_path):
    config = tiny_config("prefix", tmp_path, max_steps=2, eval_every=1, lr=1e-2)
    config.method.prefix_projection, config.method.prefix_length = True, 4
    summary = train(config, tmp_path / "run", show_progress=False)
    best = read_tensors(tmp_path / "run" / "best" / "weights.safetensors")
    last = read_tensors(tmp_path / "run" / "last" / "weights.safetensors")
    assert list(best) == ["prefix.embedding"] and best["prefix.embedding"].shape == (4, 2 * 2 * 64)
    assert {"prefix.embedding", "prefix.mlp.0.weight", "prefix.mlp.2.weight"} <= set(last)
    assert json.loads((tmp_path / "run" / "best" / "config.json").read_text())["config"]["method"][
        "prefix_projection"] is False
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["method"]["prefix_projection"]
    model, _, config = load_checkpoint(tmp_path / "run")
    assert model.prefix.mlp is None and config.method.method == "prefix"
    # evaluate.py on the folded best/ scores the validation split as the trainer did with the MLP
    assert run_cli(evaluate_main, [str(tmp_path / "run"), "--split", "validation", "--max-new-tokens", "4"]) == 0
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert metrics["loss"] == pytest.approx(summary["best_val_loss"], rel=1e-5)


def test_the_merged_export_refuses_a_prefix_in_one_sentence(tmp_path, capsys):
    model, _ = prefixed()
    with pytest.raises(MinisummError, match="A prefix cannot be merged into GPT-2's weights.*--to peft"):
        methods.merge_and_unload(model)
    checkpoint, _ = saved(tmp_path, "prefix")
    assert run_cli(export_main, [str(checkpoint), "--to", "hf", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: A prefix cannot be merged") and err.count("\n") == 1
    assert not (tmp_path / "hf").exists()


def test_left_padded_loss_rows_equal_the_same_rows_alone():
    model, _ = prefixed()
    ids = torch.randint(0, 256, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # row 1 left-padded
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :7] = -100
    with torch.no_grad():
        together = body(model, ids, mask)[0][1, 4:]
        alone = body(model, ids[1:, 4:], mask[1:, 4:])[0][0]
        torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
        assert fast_loss(model, ids, mask, labels)[0] == pytest.approx(float(plain_loss(model, ids, mask, labels)[0]),
                                                                        rel=1e-5)
