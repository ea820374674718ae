"""Model FLOPs utilisation (MFU): the share of the GPU's peak that the model's own arithmetic uses.

    MFU = model FLOPs per token x tokens per second / (peak FLOP/s per GPU x GPUs)

"Model FLOPs" are those the model needs, whatever the implementation does (PaLM, Chowdhery et al. 2022,
appendix B): recomputation (--grad-checkpointing) and padding do not count. A matmul with a weight of n
parameters costs per token 2n FLOPs forward, 2n for the gradient of its input and 2n for the gradient of its
weight. So full fine-tuning costs the well-known 6N + 12·L·H·Q·T per token (Kaplan et al. 2020): 6N for the
weights, and for attention 2·2·H·Q·T forward per layer (Q·Kᵀ and A·V over T keys), times 3 with the backward.
Fine-tuning a few weights changes the 6 per parameter:

    trainable weight                                       6 per parameter  (forward, input and weight gradients)
    frozen weight in a block at or above a trainable one   4 per parameter  (forward and input gradient: the
                                                                             gradient must pass through it)
    frozen weight below every trainable one                2 per parameter  (forward only)

counted per block of GPT-2 (prompt and prefix tuning train something below block 0, so every frozen weight
costs 4; last-layers leaves the blocks below its first one at 2). Attention costs 4·H·Q per (position, key)
pair and layer, times 3 where the gradient passes. The LM head (d x V, tied to the input embedding) runs at
the labelled positions only (`minisumm.loss`), so it is counted there: 2 + 2 (+ 2 when it trains) FLOPs per
parameter. Embedding lookups, layer norms, biases and the soft prompt's or prefix's own parameters cost no
matmul per token and are left out, as PaLM's count leaves them out. Positions and keys include a soft
prompt's P virtual positions and a prefix's P extra keys; each position attends to all T keys of its
sequence (the common convention, which does not halve the causal part).

Peak throughputs are the vendors' dense (not 2:4 sparse) tensor-core figures per GPU; an unknown GPU gets no
MFU, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from minisumm.batching import IGNORE_INDEX

# Dense tensor-core TFLOPS per GPU from NVIDIA's data sheets, by a pattern of torch.cuda.get_device_name.
# "tf32" is what fp32 matmuls get with TF32 on (`minisumm.device.resolve_device` turns it on for CUDA). The
# first matching pattern wins, so a variant comes before its family; a variant whose figures differ and are
# not here (H100 NVL, H200 NVL) is listed without figures, so that it gets no MFU rather than a wrong one.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    (r"\bH200 NVL\b", {}),
    (r"\bH200\b", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7}),  # H200 SXM
    (r"\bH100 NVL\b", {}),
    (r"\bH100 PCIe\b", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0}),
    (r"\bH100\b", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7}),  # H100 SXM5 ("NVIDIA H100 80GB HBM3")
    (r"\bA100\b", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0}),  # SXM4 and PCIe alike
    (r"\bL40S\b", {"bf16": 362.05, "fp16": 362.05, "tf32": 183.0}),
    (r"\bL4\b", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0}),
    (r"\bA10\b", {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5}),
    (r"\bV100-SXM2\b", {"fp16": 125.0}),  # no bf16 or TF32 tensor cores
    (r"\bV100-PCIE\b", {"fp16": 112.0}),
    (r"\bT4\b", {"fp16": 65.0}),
)


def device_name(device: torch.device) -> str | None:
    """The GPU's name as CUDA reports it ("NVIDIA H200"); None on any other device."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


def peak_flops(name: str | None, precision: str) -> float | None:
    """Peak dense FLOP/s of one GPU named `name` in `precision` ("bf16", "fp16", or "fp32", which counts as
    TF32 only while TF32 is on); None for a device or precision not in PEAK_TFLOPS."""
    if name is None:
        return None
    if precision == "fp32":
        if torch.get_float32_matmul_precision() == "highest":
            return None  # plain fp32 matmuls: no tensor-core figure applies
        precision = "tf32"
    for pattern, tflops in PEAK_TFLOPS:
        if re.search(pattern, name, re.IGNORECASE):
            return tflops[precision] * 1e12 if precision in tflops else None
    return None


@dataclass(frozen=True)
class FlopRates:
    """Model FLOPs of one training step, by what they grow with (module docstring)."""
    per_position: float  # the blocks' weight matrices, per position
    per_pair: float  # attention, per (position, key) pair
    per_label: float  # the LM head, per labelled position
    virtual_positions: int = 0  # a soft prompt's positions in front of each example
    extra_keys: int = 0  # a prefix's keys in front of each example's keys

    def example(self, tokens: int, labels: int) -> float:
        """FLOPs to train on one example of `tokens` real tokens with `labels` labelled positions."""
        positions = tokens + self.virtual_positions
        return (positions * self.per_position + positions * (positions + self.extra_keys) * self.per_pair
                + labels * self.per_label)


def training_rates(model, trainable: list[torch.nn.Parameter]) -> FlopRates:
    """`FlopRates` of training `trainable` in `model` (a GPT-2 that `minisumm.methods.apply` prepared)."""
    blocks = model.transformer.h
    trains = {id(p) for p in trainable}
    block_trains = [any(id(p) in trains for p in block.parameters()) for block in blocks]
    below = any(id(p) in trains for name, p in model.named_parameters()
                if not name.startswith(("transformer.h.", "transformer.ln_f.", "lm_head.")))
    lowest = -1 if below else next((i for i, t in enumerate(block_trains) if t), len(blocks))
    per_position = per_pair = 0.0
    head_dim_total = model.config.n_embd  # H·Q
    for i, block in enumerate(blocks):
        passes = i >= lowest  # the gradient passes through this block
        for p in block.parameters():
            if p.ndim >= 2:
                per_position += p.numel() * (6 if id(p) in trains else 4 if passes else 2)
        per_pair += 4 * head_dim_total * (3 if passes else 1)
    head = model.lm_head.weight
    per_label = head.numel() * (2 + (2 if lowest < len(blocks) else 0) + (2 if id(head) in trains else 0))
    prompt, prefix = getattr(model, "soft_prompt", None), getattr(model, "prefix", None)
    return FlopRates(per_position, per_pair, per_label,
                     virtual_positions=prompt.length if prompt is not None else 0,
                     extra_keys=prefix.length if prefix is not None else 0)


def flops_per_token(rates: FlopRates, examples) -> float:
    """Model FLOPs per real token over `examples` (each `{"input_ids", "labels"}` as `minisumm.batching`
    lays them out): exact for every whole epoch, whatever the batches, as an epoch trains each example once."""
    flops = tokens = 0
    for e in examples:
        n, labels = len(e["input_ids"]), e["labels"]
        labelled = len(labels) - labels.count(IGNORE_INDEX) - (labels[0] != IGNORE_INDEX)  # labels[1:], shifted
        flops += rates.example(n, labelled)
        tokens += n
    return flops / max(tokens, 1)


def utilisation(flops_per_token: float, tokens_per_s: float, peak: float, processes: int = 1) -> float:
    """MFU: the model FLOP/s of all processes over the peak of all their GPUs (a share, 0.38 = 38%)."""
    return flops_per_token * tokens_per_s / (peak * processes)
