"""MFU (minisumm.mfu): FLOP counts worked out by hand on a 2-block GPT-2 4 wide, the peak table, and train.py
showing MFU for a GPU of the table only (the GPU's name faked on a CPU)."""

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from minisumm import methods, mfu
from minisumm.cli.train import main as train_main
from minisumm.config import MethodConfig
from minisumm.errors import run_cli
from test_cli import SMALL

# Each block of a GPT-2 d = 4 wide holds 12·d² = 192 matrix parameters: c_attn 4x12, attn c_proj 4x4,
# mlp c_fc 4x16, mlp c_proj 16x4. The LM head is 4 x 10 = 40. Attention: 4·d = 16 FLOPs per pair forward.
BLOCK, HEAD, PAIR = 192, 40, 16


def prepared(method: str, **settings):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=4, n_head=2, vocab_size=10, n_positions=32))
    params = methods.apply(model, MethodConfig(method=method, prompt_init="random", **settings))
    return mfu.training_rates(model, params)


@pytest.mark.parametrize("method, settings, expected", [
    # everything trains: 6 per parameter, the gradient passes every block
    ("full", {}, mfu.FlopRates(2 * 6 * BLOCK, 2 * 3 * PAIR, 6 * HEAD)),
    # block 1 trains (6), block 0 below it only runs forward (2); the frozen head passes its gradient (4)
    ("last-layers", {"last_layers": 1}, mfu.FlopRates(2 * BLOCK + 6 * BLOCK, PAIR + 3 * PAIR, 4 * HEAD)),
    # the soft prompt sits below block 0: every frozen weight passes the gradient (4); 3 more positions
    ("prompt", {"prompt_length": 3}, mfu.FlopRates(2 * 4 * BLOCK, 2 * 3 * PAIR, 4 * HEAD, virtual_positions=3)),
    # a prefix adds keys, not positions
    ("prefix", {"prefix_length": 2}, mfu.FlopRates(2 * 4 * BLOCK, 2 * 3 * PAIR, 4 * HEAD, extra_keys=2)),
    # r = 2, one pair for q, k, v together: A 2x4 and B 12x2, 32 trainable per block at 6; the frozen at 4
    ("lora", {"lora_rank": 2, "lora_targets": "qkv"}, mfu.FlopRates(2 * (4 * BLOCK + 6 * 32), 2 * 3 * PAIR, 4 * HEAD)),
])
def test_training_rates_by_hand(method, settings, expected):
    assert prepared(method, **settings) == expected


def test_full_fine_tuning_is_6n_plus_12_lhqt_when_every_position_is_labelled():
    """The common formula (Kaplan et al. 2020; nanoGPT's estimate_mfu) as an independent reference."""
    rates, T = prepared("full"), 7
    n, layers, width = 2 * BLOCK + HEAD, 2, 4
    assert rates.example(T, T) / T == 6 * n + 12 * layers * width * T


def test_an_example_and_the_flops_per_token_of_a_split():
    rates = prepared("prompt", prompt_length=3)
    # 5 tokens, the last two labelled, so 2 labels after the shift: 8 positions, 8 x 8 pairs, 2 head rows
    assert rates.example(5, 2) == 8 * 2 * 4 * BLOCK + 64 * 2 * 3 * PAIR + 2 * 4 * HEAD == 18752
    examples = [{"input_ids": [1, 2, 3, 4, 5], "labels": [-100, -100, -100, 4, 5]},
                {"input_ids": [1, 2, 3], "labels": [1, 2, 3]}]  # a label at position 0 predicts nothing: 2
    assert mfu.flops_per_token(rates, examples) == (18752 + rates.example(3, 2)) / 8


@pytest.mark.parametrize("name, precision, tflops", [
    ("NVIDIA H200", "bf16", 989.4),
    ("NVIDIA H100 80GB HBM3", "fp16", 989.4),
    ("NVIDIA H100 PCIe", "bf16", 756.0),
    ("NVIDIA A100-SXM4-80GB", "fp32", 156.0),  # TF32, on as resolve_device turns it on for CUDA
    ("NVIDIA A100 80GB PCIe", "bf16", 312.0),
    ("NVIDIA L4", "bf16", 121.0),
    ("Tesla V100-SXM2-16GB", "fp16", 125.0),
    ("Tesla V100-SXM2-16GB", "bf16", None),  # emulated only: no tensor-core figure
    ("NVIDIA H200 NVL", "bf16", None),  # other figures than the SXM part, not in the table
    ("NVIDIA GH200 480GB", "bf16", None),  # not an H200
    ("NVIDIA L40", "bf16", None),  # not an L4, not an L40S
    ("NVIDIA GeForce RTX 3060", "bf16", None),
    (None, "fp32", None),  # the CPU
])
def test_peak_flops_from_the_table_never_guessed(monkeypatch, name, precision, tflops):
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
    assert mfu.peak_flops(name, precision) == (tflops * 1e12 if tflops else None)


def test_plain_fp32_has_no_peak(monkeypatch):
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "highest")
    assert mfu.peak_flops("NVIDIA H100 80GB HBM3", "fp32") is None


def test_utilisation_by_hand():
    # 800 MFLOP per token at 500k tokens/s on two GPUs of 1 PFLOP/s: 4e14 / 2e15
    assert mfu.utilisation(800e6, 500_000, 1e15, processes=2) == pytest.approx(0.2)


@pytest.mark.parametrize("gpu", ["NVIDIA H100 80GB HBM3", "Some Future GPU"])
def test_train_reports_mfu_for_a_gpu_of_the_table_only(tmp_path, capsys, monkeypatch, gpu):
    monkeypatch.setattr(mfu, "device_name", lambda device: gpu)  # as torch.cuda.get_device_name would say
    run = tmp_path / "run"
    flags = [*SMALL, "--method", "lora", "--max-steps", "2", "--eval-every", "1", "--precision", "bf16"]
    assert run_cli(train_main, [*flags, "--cache-dir", str(tmp_path / "cache"), "--out", str(run)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    lines = [line for line in out.splitlines() if line.startswith("step ")]
    if gpu == "Some Future GPU":
        assert "MFU" not in out and "mfu" not in summary
        return
    share = summary["model_flops_per_token"] * summary["tokens_per_s"] / 989.4e12
    assert summary["mfu"] == pytest.approx(share) and summary["gpu"] == gpu and summary["peak_tflops"] == 989.4
    assert summary["model_flops_per_token"] > 0
    assert ["MFU" in line for line in lines] == [False, True, True]  # step 0 has no training time yet
    assert f"MFU {summary['mfu']:.1%} of {gpu}'s 989 bf16 TFLOPS" in out
