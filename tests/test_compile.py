"""--compile: GPT-2's blocks through torch.compile train to the losses of the eager blocks (tiny-random, CPU).

Slow: TorchInductor writes and builds C++ for the CPU, about 30 s on one core of the development machine."""

import shutil

import pytest
import torch

from minisumm import training
from minisumm.config import RunConfig
from minisumm.tools import loading
from conftest import tiny_config

COMPILER = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def test_compile_is_off_by_default():
    assert RunConfig().train.compile is False


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(torch, "compile") or COMPILER is None,
                    reason="torch.compile on a CPU needs a C++ compiler (c++, g++ or clang++), and none is on PATH")
def test_compiled_blocks_train_to_the_eager_losses(tmp_path):
    from torch._dynamo.utils import counters

    def losses(compile: bool) -> list[float]:
        config = tiny_config("lora", tmp_path, max_steps=2, compile=compile)
        config.model.dropout, config.method.lora_dropout = 0.0, 0.0  # the same numbers, not the same masks
        t = training.setup(config, load=loading.load)
        return [training.train_step(t).loss for _ in range(2)]

    eager = losses(False)
    graphs = counters["stats"]["unique_graphs"]
    compiled = losses(True)
    assert counters["stats"]["unique_graphs"] > graphs  # the compiled blocks ran
    assert compiled == pytest.approx(eager, rel=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(torch, "compile") or COMPILER is None,
                    reason="torch.compile on a CPU needs a C++ compiler (c++, g++ or clang++), and none is on PATH")
def test_compiled_blocks_decode_the_eager_tokens():
    """Greedy decoding with the KV cache, three prompts of different lengths (left padding), as evaluate.py
    --compile decodes."""
    from minisumm.compiling import compile_blocks
    from minisumm.generate import generate
    from minisumm.tools.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer("tiny-random")
    model.eval()
    prompts = [list(range(5, 5 + n)) for n in (12, 20, 7)]
    settings = {"eos_id": tokenizer.eos_token_id, "pad_id": tokenizer.eos_token_id, "max_new_tokens": 12}
    from torch._dynamo.utils import counters

    with torch.no_grad():
        eager = generate(model, prompts, **settings)
        compile_blocks(model)
        graphs = counters["stats"]["unique_graphs"]
        assert generate(model, prompts, **settings) == eager
    assert counters["stats"]["unique_graphs"] > graphs  # the compiled blocks ran
