"""The four ways minisumm fine-tunes GPT-2, behind one small interface.

    apply(model, method_config, tokenizer=None) → the trainable parameters
        freezes every base parameter, then adds or unfreezes the method's own:
        prompt       a soft prompt in front of the input (prompt.py, Lester et al. 2021)
        prefix       trained keys and values in front of every attention layer (prefix.py, Li & Liang 2021)
        lora         low-rank updates beside the attention projections (lora.py, Hu et al. 2021)
        last-layers  the last N blocks and the final layer norm (last_layers.py)
        full         everything

The trainer, checkpoints and evaluation never ask which method they run: they train what `apply`
returns, save `trainable_state_dict`, restore it with `load_trainable_state_dict` after `apply` on a
fresh base model, and call `merge`/`unmerge` around evaluation (no-ops unless LoRA is applied). The one
place a method's checkpoint differs from its training state is `for_inference`: best/ holds a projected
prefix folded into plain keys and values.

GPT-2 ties `lm_head.weight` to `transformer.wte.weight`: one tensor under two names. Everything here
walks `model.parameters()` / `named_parameters()`, which list a shared tensor once (under its first name,
`transformer.wte.weight`), so it is never returned, counted or saved twice.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from minisumm.config import METHODS, MethodConfig
from minisumm.errors import MinisummError
from minisumm.methods.last_layers import unfreeze_all, unfreeze_last_layers
from minisumm.methods.lora import LoRAConv1D, add_lora, lora_modules, unwrap
from minisumm.methods.prefix import Prefix, add_prefix, fold
from minisumm.methods.prompt import SoftPrompt, add_soft_prompt

__all__ = ["apply", "prefix_tokens", "trainable_state_dict", "load_trainable_state_dict", "for_inference", "merge",
           "unmerge", "merge_and_unload", "LoRAConv1D", "SoftPrompt", "Prefix"]


def apply(model, method_config: MethodConfig, tokenizer=None) -> list[nn.Parameter]:
    """Prepare `model` (a GPT2LMHeadModel, changed in place) for `method_config.method`; return its trainables.

    The returned list is exactly the parameters with requires_grad, each once. `tokenizer` is needed
    only by the "text" initialisation of prompt and prefix tuning (a ValueError without it); when weights will
    be loaded over the fresh values anyway, `prompt_init` "random" avoids the need.
    """
    method = method_config.method
    if method not in METHODS:
        raise MinisummError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    model.requires_grad_(False)
    if method == "prompt":
        add_soft_prompt(model, method_config.prompt_length, method_config.prompt_init,
                        method_config.prompt_init_text, tokenizer)
    elif method == "prefix":
        add_prefix(model, method_config.prefix_length, method_config.prefix_projection, method_config.prompt_init,
                   method_config.prompt_init_text, tokenizer)
    elif method == "lora":
        add_lora(model, method_config.qkv(), method_config.lora_extras(), method_config.lora_rank,
                 method_config.lora_alpha, method_config.lora_dropout)
    elif method == "last-layers":
        unfreeze_last_layers(model, method_config.last_layers, method_config.train_lm_head)
    else:
        unfreeze_all(model)
    return [p for p in model.parameters() if p.requires_grad]


def prefix_tokens(method_config: MethodConfig) -> int:
    """Positions the method takes in front of the text: P for prompt and prefix tuning, 0 otherwise."""
    return {"prompt": method_config.prompt_length, "prefix": method_config.prefix_length}.get(method_config.method, 0)


def for_inference(config, tensors: dict[str, torch.Tensor], n_layer: int, n_head: int):
    """`(config, tensors)` as best/ stores them: a prefix trained through the projection folded into its plain
    keys and values (`prefix.fold`), its config saying so; every other method's as they are."""
    if not (config.method.method == "prefix" and config.method.prefix_projection):
        return config, tensors
    config = type(config).from_dict(config.to_dict())
    config.method.prefix_projection = False
    return config, fold(tensors, n_layer, n_head)


def trainable_state_dict(model) -> dict[str, torch.Tensor]:
    """The trainable tensors by name, as contiguous CPU copies that share no memory (fit for safetensors)."""
    return {name: p.detach().to("cpu", copy=True).contiguous()
            for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state_dict(model, tensors: dict[str, torch.Tensor], source: str = "The checkpoint") -> None:
    """Copy `tensors` (from `trainable_state_dict`) into `model`, which `apply` prepared the same way.

    Raises MinisummError, naming a key, when the names differ (weights of another method or other
    LoRA targets) or a shape differs (another model size, prompt length or rank).
    """
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(tensors))
    unexpected = sorted(set(tensors) - set(params))
    if missing or unexpected:
        found = f"has {unexpected[0]!r}, which this model does not train" if unexpected else \
            f"lacks {missing[0]!r}, which this model trains"
        raise MinisummError(f"{source} {found} ({len(missing)} missing and {len(unexpected)} unexpected "
                            f"weights): it was saved with another method or other method settings; load it "
                            f"with the method configuration it was trained with.")
    for name, param in params.items():
        if not tensors[name].is_floating_point():
            raise MinisummError(f"{source} holds {name!r} as {tensors[name].dtype}, but trained weights are "
                                f"floating point; the file was not written by minisumm or was altered.")
        if tuple(tensors[name].shape) != tuple(param.shape):
            raise MinisummError(f"{source} holds {name!r} with shape {tuple(tensors[name].shape)} but this model "
                                f"needs {tuple(param.shape)}: it was trained on another model size or with "
                                f"another prompt or prefix length or LoRA rank; load it onto the base model it was "
                                f"trained from, with the same settings.")
    merged = [wrapper for wrapper in lora_modules(model).values() if wrapper.merged]
    unmerge(model)  # a merged weight holds the old update: take it out before the pairs change
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors[name])
    for wrapper in merged:
        wrapper.merge()


def merge(model) -> None:
    """Fold every LoRA update into its frozen weight (faster decoding); a no-op for the other methods."""
    for wrapper in lora_modules(model).values():
        wrapper.merge()


def unmerge(model) -> None:
    """Undo `merge` (before training further); a no-op for the other methods."""
    for wrapper in lora_modules(model).values():
        wrapper.unmerge()


def merge_and_unload(model):
    """Return `model` as a plain transformers GPT2LMHeadModel: LoRA wrappers replaced by their merged Conv1D.

    Works in place. Last-layers and full fine-tuning already are plain models. A soft prompt or a
    prefix is not a weight of GPT-2 and cannot be folded into one: MinisummError.
    """
    if isinstance(getattr(model, "soft_prompt", None), SoftPrompt):
        raise MinisummError("A soft prompt cannot be merged into GPT-2's weights (it is extra input, not a "
                            "change to a weight); export it in PEFT's prompt-tuning format instead.")
    if isinstance(getattr(model, "prefix", None), Prefix):
        raise MinisummError("A prefix cannot be merged into GPT-2's weights (it is keys and values that every "
                            "layer reads, not a change to a weight); export it in PEFT's prefix-tuning format "
                            "instead (--to peft).")
    unwrap(model)
    return model
