"""PEFT exports load by PEFT's documented format, read here by hand (PEFT is not installed for the tests):
the recorded base model loads with plain transformers, the adapter on it gives minisumm's logits."""

import json
import re

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, DynamicCache, GPT2LMHeadModel

from minisumm.errors import run_cli
from minisumm.model import body
from minisumm.tools.checkpoint import load_checkpoint
from minisumm.tools.loading import load_model_and_tokenizer
from minisumm.tools.export import BASE_FOLDER, main as export_main, peft_base
from minisumm.tools.loading import TINY_RANDOM
from conftest import tiny_config
from test_checkpoint import saved

PREFIX = "base_model.model."


def lora_checkpoint(tmp_path, model_name: str = TINY_RANDOM, targets: str = "qv,proj,mlp"):
    """A LoRA checkpoint with non-zero A and B (B starts at zero) on `model_name`, q and v plus the extras."""
    return saved(tmp_path, "lora", model=model_name, lora_targets=targets)[0]


def read_peft_lora(folder):
    """PEFT's LoRA format applied by hand: each adapted Conv1D (fan_in_fan_out: weight stored (in, out)) gets
    W += (alpha / r) · (B @ A)ᵀ, r and alpha from rank_pattern / alpha_pattern where they name the module."""
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM" and config["fan_in_fan_out"]
    model = GPT2LMHeadModel.from_pretrained(config["base_model_name_or_path"]).eval()
    modules = dict(model.named_modules())
    tensors = load_file(folder / "adapter_model.safetensors")
    for key, lora_A in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        path = key[len(PREFIX):-len(".lora_A.weight")]
        assert any(path == target or path.endswith("." + target) for target in config["target_modules"])
        leaf = path.rsplit(".", 1)[1]
        rank = config["rank_pattern"].get(leaf, config["r"])
        alpha = config["alpha_pattern"].get(leaf, config["lora_alpha"])
        lora_B = tensors[key.replace("lora_A", "lora_B")]  # (out, r)
        assert lora_A.shape[0] == lora_B.shape[1] == rank
        with torch.no_grad():
            modules[path].weight += (alpha / rank) * (lora_B @ lora_A).T  # (in, out)
    return model


def minisumm_logits(checkpoint, ids):
    model, _, _ = load_checkpoint(checkpoint)
    with torch.no_grad():
        return model.lm_head(body(model, ids, torch.ones_like(ids))[0])  # (1, T, V)


def test_lora_adapter_on_the_recorded_base_gives_minisumm_logits(tmp_path, capsys):
    checkpoint = lora_checkpoint(tmp_path)
    out = tmp_path / "peft"
    assert run_cli(export_main, [str(checkpoint), "--to", "peft", str(out)]) == 0
    # tiny-random is built in code: its weights are written beside the adapter, recorded by absolute path
    recorded = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert recorded == str((out / BASE_FOLDER).resolve())
    base, tokenizer = load_model_and_tokenizer(TINY_RANDOM)
    written = GPT2LMHeadModel.from_pretrained(recorded).state_dict()
    assert all(torch.equal(tensor, written[name]) for name, tensor in base.state_dict().items())
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and str(out / BASE_FOLDER) in warnings[0] and "PeftModel.from_pretrained(" in warnings[0]
    ids = torch.tensor([tokenizer.encode("An adapter read by hand, the same logits.")])
    with torch.no_grad():
        theirs = read_peft_lora(out)(ids).logits
    ours = minisumm_logits(checkpoint, ids)
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    assert (base(ids).logits - ours).abs().max() > 0.1  # the adapter matters: without it, far off
    assert AutoTokenizer.from_pretrained(out).model_max_length == 512


def test_prompt_adapter_on_the_recorded_base_gives_minisumm_logits(tmp_path):
    checkpoint, _ = saved(tmp_path, "prompt")
    out = tmp_path / "peft"
    export_main([str(checkpoint), "--to", "peft", str(out)])
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 20
    base = GPT2LMHeadModel.from_pretrained(config["base_model_name_or_path"]).eval()
    soft_prompt = load_file(out / "adapter_model.safetensors")["prompt_embeddings"]  # (P, C)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.model_max_length == 512 - 20  # the soft prompt takes 20 of the 512 positions
    ids = torch.tensor([tokenizer.encode("Virtual tokens first, then the text.")])
    # PEFT's prompt tuning: the P vectors go in front of the token embeddings, at positions 0 … P-1
    embeds = torch.cat([soft_prompt[None], base.transformer.wte(ids)], dim=1)  # (1, P+T, C)
    with torch.no_grad():
        theirs = base(inputs_embeds=embeds).logits[:, soft_prompt.shape[0]:]
    torch.testing.assert_close(theirs, minisumm_logits(checkpoint, ids), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("projection", [False, True])
def test_prefix_adapter_on_the_recorded_base_gives_minisumm_logits(tmp_path, projection):
    checkpoint, _ = saved(tmp_path, "prefix", prefix_projection=projection)
    out = tmp_path / "peft"
    export_main([str(checkpoint), "--to", "peft", str(out)])
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "PREFIX_TUNING" and config["prefix_projection"] is False  # exported folded
    base = GPT2LMHeadModel.from_pretrained(config["base_model_name_or_path"]).eval()
    P, L, H = config["num_virtual_tokens"], config["num_layers"], config["num_attention_heads"]
    embeddings = load_file(out / "adapter_model.safetensors")["prompt_embeddings"]  # (P, L·2·C)
    assert P == 20 and embeddings.shape == (P, L * 2 * config["token_dim"])
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.model_max_length == 512 - 20  # the text starts at position 20 behind the prefix
    ids = torch.tensor([tokenizer.encode("Keys and values first, then the text.")])
    # PEFT's get_prompt: view (B, P, 2L, H, D), permute to (2L, B, H, P, D), pairs of (key, value) per layer,
    # as the cache GPT-2 starts from; the mask gets P ones in front and GPT-2 numbers the text from P
    pairs = embeddings[None].view(1, P, 2 * L, H, -1).permute(2, 0, 3, 1, 4).split(2)
    cache = DynamicCache(config=base.config)
    for layer, (keys, values) in enumerate(pairs):
        cache.update(keys, values, layer)
    with torch.no_grad():
        theirs = base(input_ids=ids, attention_mask=torch.ones(1, P + ids.shape[1], dtype=torch.long),
                      cache=cache).logits
    torch.testing.assert_close(theirs, minisumm_logits(checkpoint, ids), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["lora", "prompt", "prefix"])
def test_peft_card_names_the_base_and_its_code_is_python(tmp_path, method):
    checkpoint, _ = saved(tmp_path, method)
    out = tmp_path / "peft"
    export_main([str(checkpoint), "--to", "peft", str(out)])
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: peft\n")
    assert f'base_model_name_or_path: "{(out / BASE_FOLDER).resolve()}"' in card
    assert 'GPT2LMHeadModel.from_pretrained("peft/base_model")' in card
    blocks = re.findall(r"```python\n(.*?)```", card, re.S)  # run with PEFT by benchmarks/check_peft.py
    assert len(blocks) == 2 and all(compile(block, "card", "exec") for block in blocks)
    # PEFT 0.21 under transformers 5 would put the soft prompt or prefix in again at every cached step
    assert ("use_cache=False" in blocks[1]) == (method in ("prompt", "prefix"))


def test_a_local_base_folder_is_recorded_by_absolute_path_and_not_copied(tmp_path, monkeypatch):
    model, tokenizer = load_model_and_tokenizer(TINY_RANDOM)
    model.save_pretrained(tmp_path / "my-gpt2")
    tokenizer.save_pretrained(tmp_path / "my-gpt2")
    monkeypatch.chdir(tmp_path)
    checkpoint = lora_checkpoint(tmp_path, "my-gpt2", "qkv")  # relative, as a user types it
    assert export_main([str(checkpoint), "--to", "peft", "peft"]) == 0
    out = tmp_path / "peft"
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str((tmp_path / "my-gpt2").resolve())
    assert not (out / BASE_FOLDER).exists()
    ids = torch.tensor([tokenizer.encode("A local base.")])
    ours = minisumm_logits(checkpoint, ids)
    monkeypatch.chdir(out)  # PEFT reads the path from wherever it runs, not from the adapter's folder
    with torch.no_grad():
        torch.testing.assert_close(read_peft_lora(out)(ids).logits, ours, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, random_init, recorded, beside", [
    ("gpt2", False, "gpt2", False),                        # a hub id: PEFT downloads it
    ("openai-community/gpt2", False, "openai-community/gpt2", False),
    ("gpt2", True, None, True),                            # random weights seeded in code: only beside
    ("tiny-news", False, None, True),                      # shipped in minisumm, not on the hub
])
def test_which_base_is_recorded(tmp_path, name, random_init, recorded, beside):
    config = tiny_config("lora")
    config.model.model, config.model.random_init = name, random_init
    base = peft_base(config, tmp_path / "peft")
    assert base.beside == beside and base.warning.startswith("warning: ") and "\n" not in base.warning
    assert base.recorded == (recorded or str((tmp_path / "peft" / BASE_FOLDER).resolve()))
