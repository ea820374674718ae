"""The forward and the loss: positions worked out by hand; the plain loss (`minisumm.loss`) and its faster
equal (`minisumm.speedups.labelled_positions`) each against transformers' own `labels=` loss, values and
gradients, for every method."""

import pytest
import torch
from transformers import DynamicCache

from minisumm import methods
from minisumm.config import MethodConfig
from minisumm.model import body, positions_from_mask
from minisumm import loss as plain
from minisumm.speedups import labelled_positions as fast
from minisumm.speedups.labelled_positions import label_loss, labelled_hidden
from minisumm.tools.loading import load_model_and_tokenizer


def test_positions_count_real_tokens_only():
    mask = torch.tensor([[1, 1, 1, 0, 0],    # right padding (training)
                         [0, 0, 1, 1, 1]])   # left padding (decoding)
    assert positions_from_mask(mask).tolist() == [[0, 1, 2, 2, 2], [0, 0, 0, 1, 2]]


def test_label_loss_equals_transformers_full_logits_loss_on_a_padded_batch():
    model, _ = load_model_and_tokenizer("tiny-random")
    torch.manual_seed(0)
    ids = torch.randint(0, 256, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 6:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :4] = -100  # the "article": no loss there
    loss_sum, count = label_loss(model, ids, mask, labels)
    reference = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert count == int((labels[:, 1:] != -100).sum()) == 8 + 5 + 2  # positions 4.. up to each row's padding
    torch.testing.assert_close(loss_sum / count, reference, rtol=1e-5, atol=1e-6)


def test_left_padded_rows_match_the_same_rows_alone():
    model, _ = load_model_and_tokenizer("tiny-random")
    ids = torch.tensor([[256, 256, 10, 11, 12], [20, 21, 22, 23, 24]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    hidden, _, _ = body(model, ids, mask)
    alone, _, _ = body(model, ids[:1, 2:], mask[:1, 2:])
    torch.testing.assert_close(hidden[0, 2:], alone[0], rtol=1e-5, atol=1e-5)


def test_last_block_at_labelled_positions_equals_the_full_forward_there():
    """Right padding (training) and left padding (a spare slot lands on padding: no NaN), uneven counts."""
    model, _ = load_model_and_tokenizer("tiny-random")
    torch.manual_seed(1)
    ids = torch.randint(0, 256, (3, 10))
    mask = torch.tensor([[1] * 10, [1] * 7 + [0] * 3, [0, 0] + [1] * 8])
    keep = torch.zeros_like(mask, dtype=torch.bool)
    keep[0, 5:9] = True   # 4 kept
    keep[1, 3:6] = True   # 3 kept: one spare slot
    keep[2, 8] = True     # 1 kept: three spare slots, on positions that include padding
    slots = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :4]  # (B, Q): kept positions first
    used = torch.arange(4) < keep.sum(1)[:, None]  # (B, Q)
    full, _, _ = body(model, ids, mask)  # (B, T, C)
    only = labelled_hidden(model, ids, mask, slots)  # (B, Q, C)
    assert only.shape == (3, 4, model.config.n_embd)
    torch.testing.assert_close(only[used], full[keep], rtol=1e-5, atol=1e-5)
    only.sum().backward()  # spare slots are ignored by the loss: they must not send NaN back either
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# Every method at a tiny size, each trainable part on a path the loss reaches (used by test_mask_free too).
METHOD_CONFIGS = {"prompt": MethodConfig(method="prompt", prompt_length=3, prompt_init="random"),
                  "prefix": MethodConfig(method="prefix", prefix_length=3, prompt_init="vocab"),
                  "prefix-projection": MethodConfig(method="prefix", prefix_length=3, prefix_projection=True,
                                                    prompt_init="vocab"),
                  "lora": MethodConfig(method="lora", lora_targets="qv,proj,mlp", lora_rank=2),
                  "last-layers": MethodConfig(method="last-layers", last_layers=1),
                  "full": MethodConfig(method="full")}


@pytest.mark.parametrize("loss_module", [plain, fast], ids=["plain", "labelled-positions"])
@pytest.mark.parametrize("name", ["prompt", "prefix", "prefix-projection", "lora", "last-layers", "full"])
def test_label_loss_gradients_equal_transformers_labels_loss_for_every_method(name, loss_module):
    """Same loss and same gradient on every trainable tensor as the full-logits loss (dropout off)."""
    model, _ = load_model_and_tokenizer("tiny-random")
    trainable = methods.apply(model, METHOD_CONFIGS[name])
    with torch.no_grad():  # LoRA's B starts at zero: move it so that its gradient path is exercised too
        for p in trainable:
            p.add_(torch.randn_like(p) * 0.05)
    torch.manual_seed(2)
    ids = torch.randint(0, 256, (2, 14))
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :6] = -100

    def loss_and_grads(loss_fn):
        loss = loss_fn()
        grads = torch.autograd.grad(loss, trainable)
        return loss.detach(), grads

    def reference():
        embeds, full_mask = model.transformer.wte(ids), mask
        full_labels = labels
        if name == "prompt":
            embeds, full_mask = model.soft_prompt.prepend(embeds, mask)
            full_labels = torch.cat([labels.new_full((2, 3), -100), labels], 1)
        cache = None
        if name.startswith("prefix"):  # as PEFT does it: a DynamicCache holding the prefix, P ones in the mask
            full_mask = torch.cat([mask.new_ones(2, 3), mask], 1)
            cache = model.prefix.cache(2, into=DynamicCache(config=model.config))
        positions = positions_from_mask(full_mask)[:, -embeds.shape[1]:]
        return model(inputs_embeds=embeds, attention_mask=full_mask, position_ids=positions, labels=full_labels,
                     cache=cache).loss

    def ours():
        loss_sum, count = loss_module.label_loss(model, ids, mask, labels)
        return loss_sum / count

    ref_loss, ref_grads = loss_and_grads(reference)
    our_loss, our_grads = loss_and_grads(ours)
    torch.testing.assert_close(our_loss, ref_loss, rtol=1e-5, atol=1e-6)
    for ref_grad, our_grad in zip(ref_grads, our_grads):
        torch.testing.assert_close(our_grad, ref_grad, rtol=1e-4, atol=1e-6)


def test_label_loss_with_nothing_labelled_is_zero_and_backpropagates():
    model, _ = load_model_and_tokenizer("tiny-random")
    methods.apply(model, MethodConfig(method="last-layers", last_layers=1))
    ids = torch.randint(0, 256, (2, 8))
    loss_sum, count = label_loss(model, ids, torch.ones_like(ids), torch.full_like(ids, -100))
    loss_sum.backward()
    assert count == 0 and loss_sum.item() == 0.0
