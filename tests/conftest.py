"""Shared fixtures: a tiny, fast run configuration on the tiny-random model and the shipped sample data."""

import errno
import os
import subprocess
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


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MB tmpfs to fill up (`fill`); skips where mounting one is not permitted (it needs root),
    and the injected-ENOSPC tests then cover the same write paths."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write zeros into `disk` until it is full, as another program would; returns the filler to delete."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(b"\0" * 65536)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


@pytest.fixture
def read_only_dir(tmp_path):
    """An empty folder nobody can write: chmod 555 for a normal user; for root (whom permissions do not
    stop) a read-only tmpfs, skipping where mounting is not permitted."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("no read-only folder for root here: mounting a read-only tmpfs is not permitted")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)
