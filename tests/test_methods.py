"""The shared method interface: trainable sets, exact counts, gradients, save/load, errors."""

from contextlib import nullcontext

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

from minisumm import methods
from minisumm.tools.peft_format import peft_adapter
from minisumm.config import MethodConfig
from minisumm.errors import MinisummError
from minisumm.batching import IGNORE_INDEX
from minisumm.model import body
from minisumm.speedups.labelled_positions import label_loss
from minisumm.tools.loading import load_model_and_tokenizer

# every method, small enough for the tiny model; "random" prompt init needs no tokenizer
CONFIGS = {
    "prompt": MethodConfig(method="prompt", prompt_length=4, prompt_init="random"),
    "prefix": MethodConfig(method="prefix", prefix_length=4, prompt_init="vocab"),
    "prefix-projection": MethodConfig(method="prefix", prefix_length=4, prefix_projection=True, prompt_init="random"),
    "lora": MethodConfig(method="lora"),
    "lora-qv-extras": MethodConfig(method="lora", lora_targets="qv,proj,mlp", lora_rank=2),
    "last-layers": MethodConfig(method="last-layers", last_layers=1),
    "last-layers-head": MethodConfig(method="last-layers", last_layers=1, train_lm_head=True),
    "full": MethodConfig(method="full"),
}


def tiny(name: str):
    model, _ = load_model_and_tokenizer("tiny-random")
    with pytest.warns(UserWarning) if CONFIGS[name].train_lm_head else nullcontext():
        trainable = methods.apply(model, CONFIGS[name])
    return model, trainable


def logits(model, ids):
    hidden, _, _ = body(model, ids, torch.ones_like(ids))
    return model.lm_head(hidden)


def perturb(trainable) -> None:
    """Move every trainable tensor away from its initial value, as training would."""
    with torch.no_grad():
        for p in trainable:
            p.add_(torch.randn_like(p) * 0.05)


@pytest.mark.parametrize("method_config, expected", [
    (MethodConfig(method="prompt", prompt_length=20, prompt_init="random"), 15_360),
    (MethodConfig(method="prompt", prompt_length=100, prompt_init="random"), 76_800),
    (MethodConfig(method="prefix", prefix_length=20, prompt_init="random"), 20 * 12 * 2 * 768),
    (MethodConfig(method="prefix", prefix_length=20, prefix_projection=True, prompt_init="random"),
     20 * 768 + (768 * 768 + 768) + (768 * 18_432 + 18_432)),
    (MethodConfig(method="lora", lora_rank=8, lora_targets="qkv"), 294_912),
    (MethodConfig(method="lora", lora_rank=4, lora_targets="qv"), 147_456),
    (MethodConfig(method="last-layers", last_layers=2), 14_177_280),
    (MethodConfig(method="last-layers", last_layers=2, train_lm_head=True), 14_177_280 + 38_597_376),
    (MethodConfig(method="full"), 124_439_808),
], ids=["prompt20", "prompt100", "prefix20", "prefix20-projection", "lora-qkv-r8", "lora-qv-r4", "last2", "last2-head",
        "full"])
@pytest.mark.filterwarnings("ignore:--train-lm-head")
def test_trainable_counts_on_gpt2_small(method_config, expected):
    with torch.device("meta"):  # GPT-2 small's architecture, no memory, no init time
        model = GPT2LMHeadModel(GPT2Config())
    assert sum(p.numel() for p in model.parameters()) == 124_439_808
    trainable = methods.apply(model, method_config)
    assert sum(p.numel() for p in trainable) == expected


@pytest.mark.parametrize("name", CONFIGS)
def test_returned_parameters_are_exactly_the_trainable_ones(name):
    model, trainable = tiny(name)
    assert len({id(p) for p in trainable}) == len(trainable)
    assert {id(p) for p in trainable} == {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable  # and something trains


@pytest.mark.parametrize("name", CONFIGS)
def test_gradients_reach_exactly_the_returned_parameters(name):
    model, trainable = tiny(name)
    model.train()
    ids = torch.randint(0, 256, (2, 10))
    labels = ids.clone()
    labels[:, :6] = IGNORE_INDEX  # loss on the last 4 tokens, as on a summary
    loss_sum, count = label_loss(model, ids, torch.ones_like(ids), labels)
    (loss_sum / count).backward()
    returned = {id(p) for p in trainable}
    for name_, p in model.named_parameters():
        assert (p.grad is not None) == (id(p) in returned), name_


@pytest.mark.parametrize("name", CONFIGS)
def test_trainable_weights_survive_safetensors_and_a_fresh_model(name, tmp_path):
    model, trainable = tiny(name)
    perturb(trainable)
    ids = torch.randint(0, 256, (2, 8))
    expected = logits(model, ids)
    tensors = methods.trainable_state_dict(model)
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in tensors.values())
    save_file(tensors, tmp_path / "trainable.safetensors")  # refuses tensors that share memory

    torch.manual_seed(123)  # a fresh init differs from the saved one
    fresh, _ = tiny(name)
    assert not torch.allclose(logits(fresh, ids), expected)
    methods.load_trainable_state_dict(fresh, load_file(tmp_path / "trainable.safetensors"))
    torch.testing.assert_close(logits(fresh, ids), expected)


def test_full_saves_the_tied_weight_once():
    model, trainable = tiny("full")
    tensors = methods.trainable_state_dict(model)
    assert "transformer.wte.weight" in tensors and "lm_head.weight" not in tensors
    assert sum(t.numel() for t in tensors.values()) == sum(p.numel() for p in trainable)


def test_loading_into_a_merged_lora_model_keeps_it_correct():
    model, trainable = tiny("lora")
    perturb(trainable)
    tensors = methods.trainable_state_dict(model)
    ids = torch.randint(0, 256, (1, 6))
    expected = logits(model, ids)
    fresh, _ = tiny("lora")
    methods.merge(fresh)
    methods.load_trainable_state_dict(fresh, tensors)
    assert fresh.transformer.h[0].attn.c_attn.merged
    torch.testing.assert_close(logits(fresh, ids), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("saved, loaded", [("lora", "prompt"), ("prompt", "lora"), ("lora-qv-extras", "lora"),
                                           ("last-layers", "full"), ("prompt", "prefix"),
                                           ("prefix", "prefix-projection")])
def test_weights_of_another_method_are_refused(saved, loaded):
    tensors = methods.trainable_state_dict(tiny(saved)[0])
    with pytest.raises(MinisummError, match="another method or other method settings"):
        methods.load_trainable_state_dict(tiny(loaded)[0], tensors)


@pytest.mark.parametrize("name", ["prompt", "prefix", "lora", "last-layers"])
def test_weights_of_another_model_size_are_refused(name):
    narrow = GPT2LMHeadModel(GPT2Config(vocab_size=257, n_embd=32, n_layer=2, n_head=2, n_positions=1024))
    methods.apply(narrow, CONFIGS[name])
    tensors = methods.trainable_state_dict(narrow)
    with pytest.raises(MinisummError, match=r"shape \(.*\) but this model needs \(.*(64|256).*\)"):  # C, L·2·C
        methods.load_trainable_state_dict(tiny(name)[0], tensors)


def test_last_layers_range_and_lm_head_warning():
    model, _ = load_model_and_tokenizer("tiny-random")
    with pytest.raises(MinisummError, match="from 1 to 2"):
        methods.apply(model, MethodConfig(method="last-layers", last_layers=3))
    with pytest.warns(UserWarning, match="input embedding"):
        trainable = methods.apply(model, MethodConfig(method="last-layers", last_layers=1, train_lm_head=True))
    assert any(p is model.transformer.wte.weight for p in trainable)
    assert model.transformer.h[1].attn.c_attn.weight.requires_grad
    assert not model.transformer.h[0].attn.c_attn.weight.requires_grad


def test_unknown_method_is_refused():
    model, _ = load_model_and_tokenizer("tiny-random")
    with pytest.raises(MinisummError, match="Unknown method"):
        methods.apply(model, MethodConfig(method="adapters"))


@pytest.mark.parametrize("name", ["last-layers", "full"])
def test_weight_methods_need_no_merge_and_have_no_peft_adapter(name):
    model, trainable = tiny(name)
    perturb(trainable)
    ids = torch.randint(0, 256, (1, 5))
    before = logits(model, ids)
    methods.merge(model)
    methods.unmerge(model)
    assert methods.merge_and_unload(model) is model
    assert torch.equal(logits(model, ids), before)
    with pytest.raises(MinisummError, match="not an adapter"):
        peft_adapter(model, CONFIGS[name], "tiny-random")
