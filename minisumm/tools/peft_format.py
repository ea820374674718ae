"""Adapters in PEFT's on-disk format, so a minisumm LoRA, soft prompt or prefix loads with `PeftModel.from_pretrained`.

Written from PEFT's documented format (PEFT is not a dependency). A PEFT adapter folder holds
`adapter_config.json` and `adapter_model.safetensors`; `peft_adapter` returns the contents of both and
the exporter writes them. `base_model_name_or_path`, the model `AutoPeftModelForCausalLM` loads the adapter
onto, is the exporter's choice (`minisumm.tools.export`: a hub id, a local folder's absolute path, or the
base model written beside the adapter).

LoRA (`peft_type` "LORA"). PEFT keeps each pair as two nn.Linear layers, so the saved tensors are
    base_model.model.transformer.h.{i}.attn.c_attn.lora_A.weight   (r, in)
    base_model.model.transformer.h.{i}.attn.c_attn.lora_B.weight   (out, r)
the same orientation as minisumm's A and B, with `fan_in_fan_out: true` telling PEFT that the base layer
is a Conv1D storing (in, out). PEFT adapts a whole module, one pair over its full output. minisumm's
per-slice pairs (e.g. q and v only, k of the 3 thirds) become one equivalent full-width pair:

    A = [A_q; A_v]           (k·r, in)          B = ┌ B_q   0  ┐ q rows     (out, k·r)
                                                    │  0    0  │ k rows
                                                    └  0   B_v ┘ v rows

so B @ A = Σ B_part @ A_part in place: the identical update. Its rank is k·r, so `rank_pattern` and
`alpha_pattern` give c_attn rank k·r and alpha k·α (α/r, the scale, unchanged) while other targets keep r.

Prompt tuning (`peft_type` "PROMPT_TUNING"): one tensor `prompt_embeddings` (P, n_embd). PEFT places the
virtual tokens first as minisumm does; its positions with LEFT padding are transformers' defaults, not
minisumm's count of real tokens, so batched left-padded generation there can differ slightly.

Prefix tuning (`peft_type` "PREFIX_TUNING"): one tensor `prompt_embeddings` (P, L·2·C), PEFT's
PrefixEncoder embedding, in the layout minisumm trains (`minisumm.methods.prefix`): row p is prefix position
p, laid out [layer][key, value][head][head dim]; PEFT views it (P, 2L, H, D) and hands GPT-2 pair l as layer
l's past keys and values. `prefix_projection` is false: a projected prefix is exported folded, as best/ holds
it. PEFT's conventions are minisumm's: a mask of P ones in front, and the text at positions P, P+1, ...
(GPT-2 numbers positions after the cache's length), for unpadded or right-padded input.
"""

from __future__ import annotations

import torch

from minisumm.config import MethodConfig
from minisumm.errors import MinisummError
from minisumm.methods.lora import LoRAConv1D, lora_modules

PEFT_PREFIX = "base_model.model."  # PeftModel wraps a LoraModel that wraps the transformers model
EXTRA_TARGETS = {"proj": ["attn.c_proj"], "mlp": ["mlp.c_fc", "mlp.c_proj"]}  # suffixes PEFT matches exactly


def peft_adapter(model, method_config: MethodConfig, base_model_name: str
                 ) -> tuple[dict, dict[str, torch.Tensor]]:
    """`(adapter_config, tensors)` of the adapter applied to `model`, in PEFT's format, with `base_model_name` as
    its base_model_name_or_path."""
    if method_config.method == "lora":
        return _lora_adapter(model, method_config, base_model_name)
    if method_config.method == "prompt":
        return _prompt_adapter(model, method_config, base_model_name)
    if method_config.method == "prefix":
        return _prefix_adapter(model, base_model_name)
    raise MinisummError(f"--method {method_config.method} trains GPT-2's own weights, not an adapter, so "
                        f"PEFT's adapter format does not apply; export the whole model in Hugging Face "
                        f"format instead.")


def full_width_pair(wrapper: LoRAConv1D) -> tuple[torch.Tensor, torch.Tensor]:
    """One (A (k·r, in), B (out, k·r)) pair whose product equals the wrapper's k per-slice products."""
    out_features = wrapper.base.weight.shape[1]  # Conv1D stores (in, out)
    rank, names = wrapper.rank, list(wrapper.parts)
    lora_A = torch.cat([wrapper.lora_A[name].detach() for name in names])  # (k·r, in)
    lora_B = lora_A.new_zeros(out_features, len(names) * rank)  # (out, k·r)
    for index, name in enumerate(names):
        start, stop = wrapper.parts[name]
        lora_B[start:stop, index * rank:(index + 1) * rank] = wrapper.lora_B[name].detach()
    return lora_A, lora_B


def _lora_adapter(model, method_config: MethodConfig, base_model_name: str):
    wrappers = lora_modules(model)
    if not wrappers:
        raise ValueError("The model carries no LoRA wrappers: call methods.apply with the LoRA config first.")
    rank, alpha = method_config.lora_rank, method_config.lora_alpha
    tensors, rank_pattern, alpha_pattern = {}, {}, {}
    for path, wrapper in wrappers.items():
        lora_A, lora_B = full_width_pair(wrapper)
        tensors[f"{PEFT_PREFIX}{path}.lora_A.weight"] = lora_A.cpu().contiguous()
        tensors[f"{PEFT_PREFIX}{path}.lora_B.weight"] = lora_B.cpu().contiguous()
        if lora_A.shape[0] != rank:  # only c_attn with a q/k/v subset
            module = path.rsplit(".", 1)[1]
            rank_pattern[module] = lora_A.shape[0]
            alpha_pattern[module] = alpha * lora_A.shape[0] / rank
    target_modules = ["c_attn"] + [t for extra in method_config.lora_extras() for t in EXTRA_TARGETS[extra]]
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name,
        "revision": None,
        "inference_mode": True,
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": method_config.lora_dropout,
        "target_modules": target_modules,
        "fan_in_fan_out": True,  # GPT-2's Conv1D stores its weight (in, out)
        "bias": "none",
        "modules_to_save": None,
        "init_lora_weights": True,
        "layers_to_transform": None,
        "rank_pattern": rank_pattern,
        "alpha_pattern": alpha_pattern,
        "use_rslora": False,
        "use_dora": False,
    }
    return config, tensors


def _prompt_adapter(model, method_config: MethodConfig, base_model_name: str):
    soft_prompt = getattr(model, "soft_prompt", None)
    if soft_prompt is None:
        raise ValueError("The model carries no soft prompt: call methods.apply with the prompt config first.")
    text_init = method_config.prompt_init == "text"
    config = {
        "peft_type": "PROMPT_TUNING",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name,
        "revision": None,
        "inference_mode": True,
        "num_virtual_tokens": soft_prompt.length,
        "token_dim": model.config.n_embd,
        "num_transformer_submodules": 1,
        "num_attention_heads": model.config.n_head,
        "num_layers": model.config.n_layer,
        # PEFT re-initialises nothing in inference mode; "vocab" init has no name every PEFT version knows
        "prompt_tuning_init": "TEXT" if text_init else "RANDOM",
        "prompt_tuning_init_text": method_config.prompt_init_text if text_init else None,
        "tokenizer_name_or_path": base_model_name if text_init else None,
    }
    return config, {"prompt_embeddings": soft_prompt.embedding.detach().cpu().clone().contiguous()}


def _prefix_adapter(model, base_model_name: str):
    prefix = getattr(model, "prefix", None)
    if prefix is None:
        raise ValueError("The model carries no prefix: call methods.apply with the prefix config first.")
    config = {
        "peft_type": "PREFIX_TUNING",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name,
        "revision": None,
        "inference_mode": True,
        "num_virtual_tokens": prefix.length,
        "token_dim": model.config.n_embd,
        "num_transformer_submodules": 1,
        "num_attention_heads": model.config.n_head,
        "num_layers": model.config.n_layer,
        "encoder_hidden_size": model.config.n_embd,
        "prefix_projection": False,  # exported folded: the MLP's output, as best/ holds it
    }
    with torch.no_grad():
        embeddings = prefix.flat().detach().cpu().clone().contiguous()  # (P, L·2·C)
    return config, {"prompt_embeddings": embeddings}
