"""Training and loss batches go through attention without a mask: right padding puts every pad after the real
tokens, so causal attention alone already keeps each real token from seeing one, and pads carry no label
(`minisumm.model.body`). Checked against the masked forward, for every method: hidden states at every real
position, the labelled positions' hidden states, the loss and its gradients (plain and faster loss, dropout
off, and the faster loss with dropout on the same random draws)."""

import pytest
import torch

from minisumm import methods
from minisumm import loss as plain
from minisumm.batching import IGNORE_INDEX, collate
from minisumm.model import body
from minisumm.speedups import labelled_positions as fast
from minisumm.speedups import prepare_for_training
from minisumm.tools.loading import load_model_and_tokenizer
from test_loss import METHOD_CONFIGS



def right_padded_batch():
    """Three examples of 13, 9 and 6 tokens with 4, 2 and 3 labels at their ends, as `collate` pads them."""
    generator = torch.Generator().manual_seed(3)
    examples = []
    for length, labelled in ((13, 4), (9, 2), (6, 3)):
        ids = torch.randint(0, 256, (length,), generator=generator).tolist()
        examples.append({"input_ids": ids, "labels": [IGNORE_INDEX] * (length - labelled) + ids[-labelled:]})
    return collate(examples, pad_id=0)


def model_with(name):
    torch.manual_seed(0)
    model, _ = load_model_and_tokenizer("tiny-random")
    trainable = methods.apply(model, METHOD_CONFIGS[name])
    with torch.no_grad():  # LoRA's B starts at zero: move every trainable so that all of them matter
        for p in trainable:
            p.add_(torch.randn_like(p) * 0.05)
    return model, trainable


@pytest.mark.parametrize("name", METHOD_CONFIGS)
def test_hidden_states_without_a_mask_equal_the_masked_ones(name):
    model, _ = model_with(name)
    batch = right_padded_batch()
    real = batch["attention_mask"].bool()
    masked, _, _ = body(model, batch["input_ids"], batch["attention_mask"])  # (B, T, C)
    free, _, _ = body(model, batch["input_ids"], None)
    torch.testing.assert_close(free[real], masked[real], rtol=1e-5, atol=1e-5)  # every real position

    slots = batch["label_slots"]  # (B, Q)
    used = torch.arange(slots.shape[1]) < (batch["labels"][:, 1:] != IGNORE_INDEX).sum(1)[:, None]  # (B, Q)
    labelled = masked.gather(1, slots[..., None].expand(-1, -1, masked.shape[-1]))[used]  # (N, C)
    free_labelled = fast.labelled_hidden(model, batch["input_ids"], None, slots)  # (B, Q, C)
    torch.testing.assert_close(free_labelled[used], labelled, rtol=1e-5, atol=1e-5)  # every labelled position


@pytest.mark.parametrize("loss_module", [plain, fast], ids=["plain", "labelled-positions"])
@pytest.mark.parametrize("name", METHOD_CONFIGS)
def test_loss_and_gradients_without_a_mask_equal_the_masked_ones(name, loss_module):
    model, trainable = model_with(name)
    batch = right_padded_batch()

    def loss_and_grads(mask):
        loss_sum, count = loss_module.label_loss(model, batch["input_ids"], mask, batch["labels"],
                                                 batch["label_slots"])
        return loss_sum.detach(), count, torch.autograd.grad(loss_sum, trainable)

    masked_sum, masked_count, masked_grads = loss_and_grads(batch["attention_mask"])
    free_sum, free_count, free_grads = loss_and_grads(None)
    assert free_count == masked_count == 4 + 2 + 3
    torch.testing.assert_close(free_sum, masked_sum, rtol=1e-5, atol=1e-5)
    for free, masked in zip(free_grads, masked_grads, strict=True):
        torch.testing.assert_close(free, masked, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["prompt", "prefix", "lora"])
def test_training_forward_with_dropout_without_a_mask_equals_the_masked_one(name):
    """As training runs it: block attention and dropout on, the same random draws for both."""
    model, trainable = model_with(name)
    prepare_for_training(model, grad_checkpointing=False)
    model.train()
    batch = right_padded_batch()
    results = []
    for mask in (batch["attention_mask"], None):
        torch.manual_seed(5)
        loss_sum, _ = fast.label_loss(model, batch["input_ids"], mask, batch["labels"], batch["label_slots"])
        results.append((loss_sum.detach(), torch.autograd.grad(loss_sum, trainable)))
    (masked_sum, masked_grads), (free_sum, free_grads) = results
    torch.testing.assert_close(free_sum, masked_sum, rtol=1e-5, atol=1e-5)
    for free, masked in zip(free_grads, masked_grads, strict=True):
        torch.testing.assert_close(free, masked, rtol=1e-4, atol=1e-6)
