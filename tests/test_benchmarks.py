"""The benchmark scripts run end to end on the tiny model (their numbers are measured, not asserted, here)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("method", ["prompt", "prefix", "last-layers"])
def test_bench_train_writes_both_sides_and_the_checkpointed_comparison(tmp_path, method):
    out = tmp_path / "train.json"
    shape = ["--method", method, "--model", "tiny-random", "--batch-size", "2", "--article-tokens", "60",
             "--summary-tokens", "10", "--steps", "1", "--json", str(out)]
    run("bench_train.py", *shape)
    printed = run("bench_train.py", *shape, "--grad-checkpointing")
    plain, checkpointed = json.loads(out.read_text())["rows"]
    for row in (plain, checkpointed):
        for key in ("tokens_per_s", "peak_mem_mb", "reference_tokens_per_s", "reference_peak_mem_mb"):
            assert row[key] > 0, key
        assert row["loss_diff"] < 1e-5 and row["grad_norm_rel_diff"] < 1e-4  # the same training, checked
    assert checkpointed["peak_mem_ratio_vs_reference_without_checkpointing"] == pytest.approx(
        checkpointed["peak_mem_mb"] / plain["reference_peak_mem_mb"])
    assert "of the reference's peak without checkpointing" in printed


def test_bench_generate_decodes_the_same_tokens_as_transformers(tmp_path):
    out = tmp_path / "generate.json"
    run("bench_generate.py", "--model", "tiny-random", "--batch-size", "3", "--prompt-tokens", "24",
        "--new-tokens", "6", "--repeats", "1", "--json", str(out))
    results = json.loads(out.read_text())
    methods = results["methods"]
    assert results["settings"]["precision"] == "fp32"  # evaluate.py's choice on a CPU
    assert set(methods) == {"plain", "lora", "prompt"}
    assert all(row["same_output_share"] == 1.0 and row["tokens_per_s"] > 0 for row in methods.values())


def test_bench_train_refuses_a_results_file_it_cannot_extend_before_measuring_and_leaves_it(tmp_path):
    out = tmp_path / "train.json"
    out.write_text("[1, 2")  # cut short: not JSON
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_train.py"), "--method", "lora", "--model",
                             "tiny-random", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""  # nothing measured or printed
    assert result.stderr.startswith("error: --json") and result.stderr.count("\n") == 1
    assert out.read_text() == "[1, 2"
