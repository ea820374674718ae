"""Device-dependent helpers on a CPU: precision names, the random state a resume restores, peak memory per phase."""

import json

import pytest
import torch

from conftest import tiny_config
from minisumm import device as device_module
from minisumm.device import (low_precision_dtype, peak_memory_mb, reset_peak_memory, resolve_device,
                             resolve_precision, rng_state,
                             set_rng_state)
from minisumm.errors import run_cli
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.tools.training_run import train

CPU = torch.device("cpu")


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"), ((7, 5), "fp16"),   # V100, T4: bf16 emulated
                                                   ((8, 0), "bf16"), ((9, 0), "bf16")])  # A100, H100/H200
def test_auto_precision_asks_the_run_s_own_gpu_for_native_bf16(monkeypatch, capability, expected):
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: asked.append(device) or capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts there: unused
    assert resolve_precision("auto", torch.device("cuda:1")) == expected
    assert asked == [torch.device("cuda:1")]


@pytest.fixture
def float32_matmul_precision():
    before = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(before)


def test_a_cuda_device_turns_tf32_on_for_fp32_matmuls(monkeypatch, float32_matmul_precision):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    torch.set_float32_matmul_precision("highest")
    assert resolve_device("cpu") == CPU and torch.get_float32_matmul_precision() == "highest"  # a CPU run: no
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda:1")
    assert torch.get_float32_matmul_precision() == "high"  # TF32


def test_precisions_on_cpu():
    assert resolve_precision("auto", CPU) == "fp32"
    assert [resolve_precision(p, CPU) for p in ("bf16", "fp16", "fp32")] == ["bf16", "fp16", "fp32"]
    assert [low_precision_dtype(p) for p in ("bf16", "fp16", "fp32")] == [torch.bfloat16, torch.float16, None]


class FakeCudaGenerator:
    """Stands in for torch.cuda's per-device generator state, which a CPU machine does not have."""

    def __init__(self):
        self.states = {0: torch.tensor([0], dtype=torch.uint8), 1: torch.tensor([1], dtype=torch.uint8)}
        self.calls = []

    def get_rng_state(self, device):
        self.calls.append(("get", device))
        return self.states[device.index].clone()

    def set_rng_state(self, state, device):
        self.calls.append(("set", device))
        self.states[device.index] = state.clone()


@pytest.fixture
def fake_cuda(monkeypatch):
    fake = FakeCudaGenerator()
    monkeypatch.setattr(torch.cuda, "get_rng_state", fake.get_rng_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state", fake.set_rng_state)
    return fake


def test_cpu_runs_save_and_restore_the_cpu_generator_only(fake_cuda):
    torch.manual_seed(3)
    saved = rng_state(CPU)
    expected = torch.rand(4)
    torch.manual_seed(99)
    set_rng_state({**saved, "cuda": torch.tensor([7], dtype=torch.uint8)}, CPU)  # saved on a GPU, resumed on a CPU
    assert set(saved) == {"cpu"} and torch.equal(torch.rand(4), expected)
    assert fake_cuda.calls == []  # torch.cuda never touched


def test_gpu_runs_save_and_restore_their_own_gpus_generator(fake_cuda):
    gpu = torch.device("cuda", 1)
    saved = rng_state(gpu)
    assert torch.equal(saved["cuda"], torch.tensor([1], dtype=torch.uint8))
    fake_cuda.states[1] = torch.tensor([42], dtype=torch.uint8)  # the generator moves on
    set_rng_state(saved, gpu)
    assert torch.equal(fake_cuda.states[1], torch.tensor([1], dtype=torch.uint8))
    assert torch.equal(fake_cuda.states[0], torch.tensor([0], dtype=torch.uint8))  # the other GPU untouched
    assert fake_cuda.calls == [("get", gpu), ("set", gpu)]


def test_a_cpu_checkpoint_resumed_on_a_gpu_leaves_the_gpu_generator_as_seeded(fake_cuda):
    set_rng_state(rng_state(CPU), torch.device("cuda", 0))
    assert fake_cuda.calls == []


def pollute_peak(megabytes: int = 600) -> float:
    """Touch and free `megabytes` of memory: the process's peak since the last reset includes them."""
    reset_peak_memory(CPU)
    big = torch.ones(megabytes * 2**18)  # float32: 4 bytes each
    del big
    return peak_memory_mb(CPU)


def test_a_reset_forgets_the_previous_phases_peak():
    polluted = pollute_peak()
    reset_peak_memory(CPU)
    small = torch.ones(50 * 2**18)
    after = peak_memory_mb(CPU)
    del small
    assert after < polluted - 400


def test_training_loss_and_decoding_each_report_their_own_peak(tmp_path):
    """A 600 MB spike before training is in none of the three peaks: the trainer's, the evaluation loss's
    and the decoding's."""
    polluted = pollute_peak()
    run = tmp_path / "run"
    summary = train(tiny_config("lora", tmp_path, max_steps=1), run, show_progress=False)
    polluted = max(polluted, pollute_peak())
    assert run_cli(evaluate_main, [str(run), "--split", "validation", "--limit", "4", "--max-new-tokens", "4",
                                   "--device", "cpu"]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    for phase, peak in (("training", summary["peak_memory_mb"]), ("loss", metrics["loss_peak_memory_mb"]),
                        ("decoding", metrics["decode_peak_memory_mb"])):
        assert 0 < peak < polluted - 400, phase


def test_without_proc_the_peak_is_the_process_peak(monkeypatch, tmp_path):
    monkeypatch.setattr(device_module, "_STATUS", tmp_path / "missing")
    monkeypatch.setattr(device_module, "_CLEAR_REFS", tmp_path / "missing-dir" / "clear_refs")
    reset_peak_memory(CPU)  # nothing to reset: no error
    assert peak_memory_mb(CPU) > 10
