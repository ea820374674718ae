"""Shared fixtures: a tiny, fast run configuration on the tiny-random model and the shipped sample data."""

import os
from pathlib import Path

# Before torch loads MKL: with dynamic threading MKL may run a matrix product on fewer threads when the
# machine is busy, which sums in another order and moves the last bits (seen: logits 1.8e-4 apart for the
# same weights, in 2 of 25 runs under load). The suite checks exact reproducibility (a resumed run's weights,
# a reloaded checkpoint's logits), so it pins MKL's thread count; subprocesses inherit the setting.
os.environ.setdefault("MKL_DYNAMIC", "FALSE")

import pytest

from minisumm.config import RunConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def tiny_config(method: str = "lora", tmp_path: Path | None = None, **train) -> RunConfig:
    """A run that takes seconds on 2 CPU cores: 32 short training examples, 8 for validation."""
    config = RunConfig()
    config.model.model = "tiny-random"
    config.method.method = method
    config.data.data = "sample"
    config.data.train_size, config.data.validation_size, config.data.test_size = "32", "8", "8"
    config.data.max_length, config.data.max_summary_tokens = 192, 48
    if tmp_path is not None:
        config.data.cache_dir = str(tmp_path / "cache")
    config.train.batch_size, config.train.grad_accum, config.train.epochs = 4, 2, 2
    config.train.log_every = 1
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


@pytest.fixture
def shared_dir():
    if not (SHARED / "gpt2" / "vocab.json").exists():
        pytest.skip("../shared is not present (it is beside the project on CI and developer machines only)")
    return SHARED
