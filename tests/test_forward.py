"""The shared forward: positions worked out by hand, and the labelled-positions loss against transformers'."""

import torch

from minisumm.forward import body, label_loss, positions_from_mask
from minisumm.model import load_model_and_tokenizer


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
