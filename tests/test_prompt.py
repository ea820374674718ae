"""Prompt tuning against a hand-built reference: GPT-2 run on the concatenated embeddings directly."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from minisumm import methods
from minisumm.tools.peft_format import peft_adapter
from minisumm.config import MethodConfig
from minisumm.errors import MinisummError
from minisumm.model import body
from minisumm.methods.prompt import SoftPrompt
from minisumm.tools.loading import load_model_and_tokenizer

P = 5


def tiny_prompt(init: str = "random", text: str = "ab"):
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    config = MethodConfig(method="prompt", prompt_length=P, prompt_init=init, prompt_init_text=text)
    torch.manual_seed(3)
    methods.apply(model, config, tokenizer=tokenizer)
    return model, tokenizer, config


def by_hand(model, ids: torch.Tensor) -> torch.Tensor:
    """Hidden states of `ids` (1, T) alone, prompt concatenated by hand, transformers' own positions."""
    embeds = torch.cat([model.soft_prompt.embedding[None], model.transformer.wte(ids)], dim=1)  # (1, P+T, C)
    return model.transformer(inputs_embeds=embeds).last_hidden_state[:, P:]  # (1, T, C)


def test_prepend_puts_the_prompt_first_with_mask_one():
    soft_prompt = SoftPrompt(torch.randn(3, 4))
    embeds = torch.randn(2, 6, 4, dtype=torch.bfloat16)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    out, out_mask = soft_prompt.prepend(embeds, mask)
    assert out.shape == (2, 9, 4) and out.dtype == torch.bfloat16
    assert torch.equal(out[1, :3], soft_prompt.embedding.to(torch.bfloat16))
    assert torch.equal(out[:, 3:], embeds)
    assert out_mask.tolist() == [[1, 1, 1, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1]]
    assert soft_prompt.length == 3


def test_body_equals_gpt2_on_concatenated_embeddings():
    model, _, _ = tiny_prompt()
    ids = torch.randint(0, 256, (1, 8))
    hidden, mask, _ = body(model, ids, torch.ones_like(ids))
    assert mask.shape == (1, P + 8)
    torch.testing.assert_close(hidden, by_hand(model, ids))
    torch.testing.assert_close(model.lm_head(hidden), model.lm_head(by_hand(model, ids)))


def test_left_padded_rows_equal_each_row_alone():
    model, _, _ = tiny_prompt()
    short, long = torch.randint(0, 256, (1, 4)), torch.randint(0, 256, (1, 7))
    pad = torch.full((1, 3), 256)
    ids = torch.cat([torch.cat([pad, short], 1), long])  # (2, 7), row 0 left-padded
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1] * 7])
    hidden, _, _ = body(model, ids, mask)
    torch.testing.assert_close(hidden[0:1, 3:], by_hand(model, short), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden[1:2], by_hand(model, long), atol=1e-5, rtol=1e-5)


def test_the_prompt_changes_the_output_and_gets_the_gradient():
    model, _, _ = tiny_prompt()
    base, _ = load_model_and_tokenizer("tiny-random")
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (1, 6), generator=generator)
    hidden, _, _ = body(model, ids, torch.ones_like(ids))
    plain, _, _ = body(base, ids, torch.ones_like(ids))
    assert not torch.allclose(hidden, plain, atol=1e-3)
    # a random projection: hidden.sum() would have no gradient, as each row of ln_f's output (gain 1, bias 0)
    # sums to zero whatever its input
    (hidden * torch.randn(hidden.shape, generator=generator)).sum().backward()
    assert model.soft_prompt.embedding.grad is not None and model.soft_prompt.embedding.grad.abs().sum() > 0


def test_text_init_cycles_or_cuts_the_text_embeddings():
    model, tokenizer, _ = tiny_prompt("text", "ab")  # byte tokenizer: ids of a, b
    a, b = tokenizer("ab")["input_ids"]
    wte = model.transformer.wte.weight
    assert torch.equal(model.soft_prompt.embedding, wte[[a, b, a, b, a]])
    model, tokenizer, _ = tiny_prompt("text", "summarise this")
    assert torch.equal(model.soft_prompt.embedding, wte[tokenizer("summa")["input_ids"]])


def test_text_init_needs_a_tokenizer_and_some_text():
    model, _ = load_model_and_tokenizer("tiny-random")
    with pytest.raises(ValueError, match="tokenizer"):
        methods.apply(model, MethodConfig(method="prompt", prompt_init="text"))
    model, tokenizer = load_model_and_tokenizer("tiny-random")
    with pytest.raises(MinisummError, match="no tokens"):
        methods.apply(model, MethodConfig(method="prompt", prompt_init_text=""), tokenizer=tokenizer)


def test_vocab_init_samples_rows_of_the_5000_lowest_ids_reproducibly():
    model = GPT2LMHeadModel(GPT2Config(vocab_size=6000, n_embd=8, n_layer=1, n_head=2, n_positions=32,
                                       bos_token_id=5999, eos_token_id=5999))
    config = MethodConfig(method="prompt", prompt_length=200, prompt_init="vocab")
    torch.manual_seed(0)
    methods.apply(model, config)
    first = model.soft_prompt.embedding.detach().clone()
    wte = model.transformer.wte.weight.detach()  # random rows: a row identifies its id
    matches = (first[:, None, :] == wte[None]).all(-1)  # (200, 6000): prompt row i is wte row j
    assert (matches.sum(-1) == 1).all() and matches.nonzero()[:, 1].max() < 5000
    torch.manual_seed(0)
    methods.apply(model, config)
    assert torch.equal(model.soft_prompt.embedding, first)


def test_random_init_is_uniform_in_half_unit_range():
    model, _, _ = tiny_prompt("random")
    embedding = model.soft_prompt.embedding
    assert embedding.shape == (P, model.config.n_embd)
    assert embedding.abs().max() <= 0.5 and embedding.std() > 0.2  # uniform ±0.5 has std 0.29


def test_prefix_tokens_counts_the_prompt_only():
    assert methods.prefix_tokens(MethodConfig(method="prompt", prompt_length=20)) == 20
    assert methods.prefix_tokens(MethodConfig(method="lora", prompt_length=20)) == 0


def test_peft_export_of_the_soft_prompt():
    model, _, config = tiny_prompt("text", "ab")
    adapter_config, tensors = peft_adapter(model, config, "tiny-random")
    assert adapter_config["peft_type"] == "PROMPT_TUNING" and adapter_config["task_type"] == "CAUSAL_LM"
    assert adapter_config["num_virtual_tokens"] == P and adapter_config["token_dim"] == model.config.n_embd
    assert adapter_config["num_transformer_submodules"] == 1 and adapter_config["num_layers"] == 2
    assert adapter_config["prompt_tuning_init"] == "TEXT" and adapter_config["prompt_tuning_init_text"] == "ab"
    assert adapter_config["tokenizer_name_or_path"] == "tiny-random"
    assert list(tensors) == ["prompt_embeddings"]
    assert torch.equal(tensors["prompt_embeddings"], model.soft_prompt.embedding.detach())


def test_a_soft_prompt_cannot_be_merged_into_weights():
    model, _, _ = tiny_prompt()
    methods.merge(model)  # a no-op, so evaluation code may call it for any method
    with pytest.raises(MinisummError, match="soft prompt"):
        methods.merge_and_unload(model)
