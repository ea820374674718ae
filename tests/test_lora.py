"""LoRA against hand-written math: nn.Linear-style products from the Conv1D weight, merges, PEFT export."""

import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from minisumm import methods
from minisumm.tools.peft_format import peft_adapter
from minisumm.config import MethodConfig
from minisumm.model import body
from minisumm.methods.lora import LoRAConv1D, lora_modules
from minisumm.tools.loading import load_model_and_tokenizer

C = 16  # width of the hand-built layers


def conv1d(seed: int = 0) -> Conv1D:
    torch.manual_seed(seed)
    layer = Conv1D(3 * C, C)  # weight (C, 3C), computes x @ W + b
    with torch.no_grad():
        layer.bias.normal_()
    return layer.requires_grad_(False)


def randomise_pairs(wrapper: LoRAConv1D) -> None:
    """B starts at zero; give it (and A) random values so the update is not trivially zero."""
    with torch.no_grad():
        for name in wrapper.parts:
            wrapper.lora_A[name].normal_()
            wrapper.lora_B[name].normal_()


def logits(model, input_ids):
    hidden, _, _ = body(model, input_ids, torch.ones_like(input_ids))
    return model.lm_head(hidden)  # (B, T, V)


def tiny_lora(targets: str = "qkv", rank: int = 4, alpha: float = 8.0):
    model, _ = load_model_and_tokenizer("tiny-random")
    config = MethodConfig(method="lora", lora_targets=targets, lora_rank=rank, lora_alpha=alpha, lora_dropout=0.0)
    methods.apply(model, config)
    return model, config


def perturb_all(model) -> None:
    torch.manual_seed(7)
    for wrapper in lora_modules(model).values():
        randomise_pairs(wrapper)


def test_wrapper_output_is_base_plus_scaled_low_rank_product():
    base = conv1d()
    wrapper = LoRAConv1D(base, {"qkv": (0, 3 * C)}, rank=4, alpha=8.0)
    randomise_pairs(wrapper)
    x = torch.randn(2, 5, C)
    W, b = base.weight, base.bias  # (C, 3C), (3C,)
    A, B = wrapper.lora_A["qkv"], wrapper.lora_B["qkv"]  # (4, C), (3C, 4)
    expected = x @ W + b + (x @ A.T @ B.T) * (8.0 / 4)
    torch.testing.assert_close(wrapper(x), expected)
    # the same with nn.Linear's convention: weight (out, in) = Wᵀ, update weight = B @ A
    torch.testing.assert_close(wrapper(x), F.linear(x, W.T, b) + F.linear(x, B @ A) * 2.0)


def test_subset_adapts_only_its_slices():
    base = conv1d()
    wrapper = LoRAConv1D(base, {"q": (0, C), "v": (2 * C, 3 * C)}, rank=2, alpha=6.0)
    randomise_pairs(wrapper)
    x = torch.randn(3, 4, C)
    plain = F.linear(x, base.weight.T, base.bias)  # (3, 4, 3C)
    out = wrapper(x)
    assert torch.equal(out[..., C:2 * C], plain[..., C:2 * C])  # k: exactly the base output
    for name, (start, stop) in {"q": (0, C), "v": (2 * C, 3 * C)}.items():
        update = x @ wrapper.lora_A[name].T @ wrapper.lora_B[name].T * 3.0
        torch.testing.assert_close(out[..., start:stop], plain[..., start:stop] + update)
    assert not torch.allclose(out[..., :C], plain[..., :C])


def test_pairs_have_the_documented_shapes_and_init():
    wrapper = LoRAConv1D(conv1d(), {"q": (0, C), "v": (2 * C, 3 * C)}, rank=4, alpha=8.0)
    assert wrapper.lora_A["q"].shape == (4, C) and wrapper.lora_B["v"].shape == (C, 4)
    assert torch.count_nonzero(wrapper.lora_B["q"]) == 0
    bound = 1 / C ** 0.5  # kaiming-uniform with a=√5 is uniform in ±1/√fan_in, nn.Linear's init
    assert wrapper.lora_A["q"].abs().max() <= bound and wrapper.lora_A["q"].std() > bound / 3


def test_adapted_model_equals_base_model_at_initialisation():
    base, _ = load_model_and_tokenizer("tiny-random")
    model, _ = tiny_lora("qkv,proj,mlp")
    ids = torch.randint(0, 256, (2, 9))
    assert torch.equal(logits(model, ids), logits(base, ids))
    assert isinstance(model.transformer.h[1].mlp.c_fc, LoRAConv1D)
    # wrappers follow the model's eval mode (a new module starts in training mode: LoRA dropout on)
    assert not any(m.training for m in model.modules())


def test_dropout_acts_on_the_low_rank_path_only():
    wrapper = LoRAConv1D(conv1d(), {"k": (C, 2 * C)}, rank=2, alpha=2.0, dropout=0.5).train()
    randomise_pairs(wrapper)
    x = torch.randn(4, 6, C)
    first, second = wrapper(x), wrapper(x)
    plain = F.linear(x, wrapper.base.weight.T, wrapper.base.bias)
    assert torch.equal(first[..., :C], plain[..., :C]) and torch.equal(second[..., 2 * C:], plain[..., 2 * C:])
    assert not torch.allclose(first[..., C:2 * C], second[..., C:2 * C])


def test_merge_matches_unmerged_output_and_is_idempotent():
    model, config = tiny_lora("qv")
    perturb_all(model)
    ids = torch.randint(0, 256, (2, 9))
    wrapper = model.transformer.h[0].attn.c_attn
    original = wrapper.base.weight.clone()
    unmerged_logits = logits(model, ids)

    methods.merge(model)
    once = wrapper.base.weight.clone()
    methods.merge(model)
    assert torch.equal(wrapper.base.weight, once)  # merging twice = merging once
    torch.testing.assert_close(logits(model, ids), unmerged_logits, atol=1e-5, rtol=1e-5)

    # Conv1D orientation: the q columns moved by (B_q @ A_q)ᵀ · α/r, the k columns not at all
    A, B = wrapper.lora_A["q"], wrapper.lora_B["q"]
    n = model.config.n_embd
    torch.testing.assert_close(once[:, :n] - original[:, :n], (B @ A).T * (config.lora_alpha / config.lora_rank))
    assert torch.equal(once[:, n:2 * n], original[:, n:2 * n])

    methods.unmerge(model)
    methods.unmerge(model)
    torch.testing.assert_close(wrapper.base.weight, original, atol=1e-6, rtol=0)
    torch.testing.assert_close(logits(model, ids), unmerged_logits)


def test_merge_and_unload_returns_a_plain_transformers_model():
    model, _ = tiny_lora("qv,proj")
    perturb_all(model)
    ids = torch.randint(0, 256, (1, 12))
    expected = logits(model, ids)
    plain = methods.merge_and_unload(model)
    assert type(plain) is GPT2LMHeadModel
    assert not any(isinstance(m, LoRAConv1D) for m in plain.modules())
    assert all(type(block.attn.c_attn) is Conv1D for block in plain.transformer.h)
    fresh, _ = load_model_and_tokenizer("tiny-random")
    assert set(plain.state_dict()) == set(fresh.state_dict())
    torch.testing.assert_close(plain(ids).logits, expected, atol=1e-5, rtol=1e-5)


def test_peft_export_has_peft_keys_shapes_and_config():
    model, config = tiny_lora("qkv,proj,mlp", rank=4, alpha=8.0)
    adapter_config, tensors = peft_adapter(model, config, "tiny-random")
    n = model.config.n_embd
    assert adapter_config["peft_type"] == "LORA" and adapter_config["task_type"] == "CAUSAL_LM"
    assert adapter_config["fan_in_fan_out"] is True and adapter_config["bias"] == "none"
    assert adapter_config["r"] == 4 and adapter_config["lora_alpha"] == 8.0
    assert adapter_config["target_modules"] == ["c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
    assert adapter_config["rank_pattern"] == {} and adapter_config["base_model_name_or_path"] == "tiny-random"
    prefix = "base_model.model.transformer.h.1."
    assert tensors[prefix + "attn.c_attn.lora_A.weight"].shape == (4, n)
    assert tensors[prefix + "attn.c_attn.lora_B.weight"].shape == (3 * n, 4)
    assert tensors[prefix + "mlp.c_fc.lora_B.weight"].shape == (4 * n, 4)
    assert tensors[prefix + "mlp.c_proj.lora_A.weight"].shape == (4, 4 * n)
    assert len(tensors) == 2 * 2 * 4  # layers × (A, B) × modules
    assert all(".default." not in key for key in tensors)


def test_peft_export_of_a_subset_reproduces_the_update_by_hand():
    model, config = tiny_lora("qv,proj", rank=4, alpha=8.0)
    perturb_all(model)
    adapter_config, tensors = peft_adapter(model, config, "tiny-random")
    assert adapter_config["rank_pattern"] == {"c_attn": 8} and adapter_config["alpha_pattern"] == {"c_attn": 16.0}

    # one layer: x @ W + b + (x @ Aᵀ @ Bᵀ)·α/r from the exported pair equals the wrapper's output
    wrapper = model.transformer.h[0].attn.c_attn
    A = tensors["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"]  # (8, C)
    B = tensors["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"]  # (3C, 8)
    x = torch.randn(2, 3, model.config.n_embd)
    by_hand = x @ wrapper.base.weight + wrapper.base.bias + (x @ A.T @ B.T) * (16.0 / 8)
    torch.testing.assert_close(wrapper(x), by_hand)

    # the whole model: fold every exported pair into a plain model as PEFT would, compare logits
    plain, _ = load_model_and_tokenizer("tiny-random")
    with torch.no_grad():
        for key, lora_A in tensors.items():
            if ".lora_A." not in key:
                continue
            path = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            lora_B = tensors[key.replace(".lora_A.", ".lora_B.")]
            module = path.rsplit(".", 1)[1]
            scale = adapter_config["alpha_pattern"].get(module, adapter_config["lora_alpha"]) / \
                adapter_config["rank_pattern"].get(module, adapter_config["r"])
            assert lora_A.shape[0] == adapter_config["rank_pattern"].get(module, adapter_config["r"])
            plain.get_submodule(path).weight += (lora_B @ lora_A).T * scale
    ids = torch.randint(0, 256, (2, 7))
    torch.testing.assert_close(plain(ids).logits, logits(model, ids), atol=1e-4, rtol=1e-4)
