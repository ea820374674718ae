"""Exact speed-ups of plain paths. Each leaves the loss and gradients as they were, and is tested to.

    labelled_positions.py  the last block and LM head at the labelled positions only   (= minisumm.loss)
    block_attention.py     causal attention with dropout in query blocks, on CPU       (= PyTorch's SDPA math path)
    fused_gelu.py          GPT-2's tanh GELU as one fused kernel                       (= transformers' GELU)

`prepare_for_training(model, grad_checkpointing)` is what every training run applies, and
`labelled_positions.label_loss` the loss it trains with; with `--no-speedups` (`TrainConfig.speedups`) a run
keeps GPT-2's own attention and GELU and trains with `minisumm.loss.label_loss`.
"""

from __future__ import annotations

from minisumm.speedups.block_attention import use_block_attention
from minisumm.speedups.fused_gelu import use_fused_gelu
from minisumm.speedups.labelled_positions import label_loss

__all__ = ["prepare_for_training", "enable_activation_checkpointing", "label_loss"]


def prepare_for_training(model, grad_checkpointing: bool, speedups: bool = True) -> None:
    """The model as a training run uses it: with `speedups`, block attention (CPU with dropout) and the fused
    GELU; activation checkpointing when asked. Each leaves the loss and gradients as they were."""
    if speedups:
        use_block_attention(model)
        use_fused_gelu(model)
    if grad_checkpointing:
        enable_activation_checkpointing(model)


def enable_activation_checkpointing(model) -> None:
    """Keep only each block's input in the forward pass and recompute the rest in the backward pass
    (Chen et al. 2016): activation memory per block drops to one (B, T, C) tensor, for ~30% more compute.

    transformers' call also hooks the input embedding so that its output requires grad (for adapters under
    reentrant checkpointing). We remove that hook: non-reentrant checkpointing reaches trainable weights
    without it, and with it last-layers training would backpropagate through, and recompute, every frozen
    block below the trained ones (2.3x the step time and more memory than no checkpointing at all).
    Frozen blocks whose input needs no gradient keep nothing for the backward pass either way."""
    model.activation_checkpointing_enable({"use_reentrant": False})
    model.disable_input_require_grads()
    if getattr(model, "prefix", None) is not None:
        # GPT2Model hands its blocks no cache when it checkpoints, as a recomputed block would write a cache
        # twice; a prefix's training cache is never written (methods/prefix.py), and the blocks need it
        model.transformer.gradient_checkpointing = False
