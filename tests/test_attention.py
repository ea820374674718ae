"""Block attention with dropout against the plain formula, its dropout rate, and its place in GPT-2."""

import pytest
import torch
import torch.nn.functional as F

from minisumm.speedups import block_attention as attention
from minisumm.speedups.block_attention import CausalDropoutAttention, draw_keep, use_block_attention
from minisumm.speedups.labelled_positions import label_loss
from minisumm.tools.loading import load_model_and_tokenizer


def plain_attention(q, k, v, allowed, keep, p, scale):
    """The textbook formula on the whole T × (P+T) matrix, with the same keep mask; keys 0 … P-1 a prefix."""
    T, S = q.shape[2], k.shape[2]
    mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
    if allowed is not None:
        mask = mask & allowed
    scores = (q @ k.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf"))
    probs = scores.softmax(-1).nan_to_num(0.0)
    return (probs * keep / (1 - p)) @ v


def assert_block_attention_is_plain_attention(q, k, v, allowed, keep):
    """The blocked autograd Function equals the plain formula, in its output and in all three gradients."""
    ours = CausalDropoutAttention.apply(q, k, v, allowed, keep, 0.3, 8 ** -0.5)
    plain = plain_attention(q, k, v, allowed, keep, 0.3, 8 ** -0.5)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(plain)
    for a, b in zip(torch.autograd.grad(ours, (q, k, v), grad), torch.autograd.grad(plain, (q, k, v), grad)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [70, 150])  # a partial last block; several blocks (BLOCK = 64)
@pytest.mark.parametrize("padded", [False, True])
def test_block_attention_equals_the_plain_formula_and_its_gradients(length, padded):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, length, 8, requires_grad=True) for _ in range(3))
    allowed = None
    if padded:  # row 1 right-padded: keys past 50 are padding; its padding queries still see keys 0..50
        real = torch.ones(2, length, dtype=torch.bool)
        real[1, 50:] = False
        allowed = real[:, None, None, :].expand(2, 1, length, length)
    keep = draw_keep(2, 3, length, 0.3)
    assert_block_attention_is_plain_attention(q, k, v, allowed, keep)


@pytest.mark.parametrize("prefix", [5, 70])  # fewer keys than a block; more
def test_a_prefix_s_keys_go_first_in_every_block(prefix):
    torch.manual_seed(3)
    length = 130
    q = torch.randn(2, 3, length, 8, requires_grad=True)
    k, v = (torch.randn(2, 3, prefix + length, 8, requires_grad=True) for _ in range(2))
    real = torch.ones(2, prefix + length, dtype=torch.bool)
    real[1, prefix:prefix + 20] = False  # row 1 left-padded behind its prefix: its first 20 text keys are padding
    allowed = real[:, None, None, :].expand(2, 1, length, prefix + length)
    keep = draw_keep(2, 3, length, 0.3, prefix=prefix)
    assert keep.shape == (2, 3, length, prefix + length)
    assert_block_attention_is_plain_attention(q, k, v, allowed, keep)


def test_gpt2_with_a_prefix_trains_through_the_blocks_with_the_prefix_s_keys(monkeypatch):
    from minisumm import methods
    from minisumm.config import MethodConfig

    model, _ = load_model_and_tokenizer("tiny-random")
    methods.apply(model, MethodConfig(method="prefix", prefix_length=5, prompt_init="vocab"))
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1
    use_block_attention(model)
    calls = []
    real = CausalDropoutAttention.apply
    monkeypatch.setattr(CausalDropoutAttention, "apply", lambda *a: calls.append(tuple(a[1].shape)) or real(*a))
    ids = torch.randint(0, 256, (2, 70))
    labels = ids.clone()
    labels[:, :40] = -100
    model.train()
    loss_sum, count = label_loss(model, ids, torch.ones_like(ids), labels)
    (loss_sum / count).backward()
    # blocks 0 … L-2 (the last one runs at the labelled positions only): keys of the prefix and the text
    assert calls == [(2, 2, 5 + 70, 32)] * (model.config.n_layer - 1)
    assert torch.isfinite(model.prefix.embedding.grad).all() and model.prefix.embedding.grad.abs().sum() > 0


def test_without_dropout_it_is_pytorchs_sdpa():
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 2, 130, 16) for _ in range(3))
    keep = torch.ones(2, 2, 130, 130, dtype=torch.bool)
    ours = CausalDropoutAttention.apply(q, k, v, None, keep, 0.0, 0.25)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.25),
                               rtol=1e-5, atol=1e-5)


def test_a_row_with_no_allowed_key_gives_zeros_not_nan():
    q, k, v = (torch.randn(1, 1, 4, 2, requires_grad=True) for _ in range(3))
    allowed = torch.tensor([False, True, True, True])[None, None, None, :].expand(1, 1, 4, 4)
    out = CausalDropoutAttention.apply(q, k, v, allowed, draw_keep(1, 1, 4, 0.1), 0.1, 1.0)
    assert out[0, 0, 0].tolist() == [0.0, 0.0] and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_keep_mask_keeps_one_minus_p_of_the_causal_entries():
    torch.manual_seed(2)
    keep = draw_keep(2, 4, 256, 0.3)
    causal = torch.ones(256, 256, dtype=torch.bool).tril()
    share = keep[:, :, causal].float().mean().item()  # 263,168 draws: standard error 0.0009
    assert abs(share - 0.7) < 0.005


def test_gpt2_uses_the_blocks_only_when_training_with_dropout_on_cpu(monkeypatch):
    model, _ = load_model_and_tokenizer("tiny-random")
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1
    use_block_attention(model)
    calls = []
    real = CausalDropoutAttention.apply
    monkeypatch.setattr(CausalDropoutAttention, "apply", lambda *a: calls.append(1) or real(*a))
    ids = torch.randint(0, 256, (2, 40))
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    model.eval()
    with torch.no_grad():
        eval_loss, count = label_loss(model, ids, mask, labels)
    assert calls == []  # evaluation: transformers' SDPA
    reference = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(eval_loss / count, reference, rtol=1e-5, atol=1e-6)
    model.train()
    loss_sum, count = label_loss(model, ids, mask, labels)
    (loss_sum / count).backward()
    blocks = model.config.n_layer - 1  # the last block runs at the labelled positions only (labelled_positions.py)
    assert len(calls) == blocks and torch.isfinite(loss_sum)
    assert model.config._attn_implementation == attention.NAME
