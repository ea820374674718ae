"""Checkpoints: the round trip, and every kind of bad or untrusted checkpoint refused in one sentence."""

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from conftest import tiny_config
from minisumm import methods
from minisumm.tools.checkpoint import FORMAT_VERSION, save_checkpoint
from minisumm.model import body, build
from minisumm.tools.checkpoint import load_checkpoint
from minisumm.tools.loading import load
from minisumm.errors import MinisummError


def saved(tmp_path, method="lora", model="tiny-random", **method_settings):
    """A checkpoint folder with non-trivial trainable weights, and the model they came from; `model` and
    `method_settings` (e.g. lora_targets="qv") change the tiny default."""
    config = tiny_config(method, tmp_path)
    config.model.model = model
    for name, value in method_settings.items():
        setattr(config.method, name, value)
    torch.manual_seed(0)
    model, _, params, _ = build(config, load)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p) * 0.1)
    folder = tmp_path / "run" / "best"
    save_checkpoint(folder, config, methods.trainable_state_dict(model))
    (tmp_path / "run" / "config.json").write_text((folder / "config.json").read_text())
    return folder, model


@pytest.mark.parametrize("method", ["prompt", "prefix", "lora", "last-layers", "full"])
def test_round_trip_gives_identical_logits(tmp_path, method):
    folder, model = saved(tmp_path, method)
    for path in (folder, folder.parent):  # the checkpoint folder, or the run folder (which means best/)
        loaded, tokenizer, config = load_checkpoint(path)
        ids = torch.tensor([tokenizer.encode("Same weights, same logits.")])
        assert config.method.method == method
        with torch.no_grad():  # through minisumm's forward: a soft prompt or prefix included
            before, after = (m.lm_head(body(m.eval(), ids, torch.ones_like(ids))[0]) for m in (model, loaded))
        assert torch.equal(before, after)


def test_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MinisummError, match="is not a minisumm checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(MinisummError, match="is a file, not a checkpoint"):
        load_checkpoint(tmp_path / "notes.txt")


def test_missing_config(tmp_path):
    folder, _ = saved(tmp_path)
    (folder / "config.json").unlink()
    with pytest.raises(MinisummError, match="no config.json"):
        load_checkpoint(folder)


def test_weights_of_another_method(tmp_path):
    folder, _ = saved(tmp_path, "lora")
    prompt_folder, _ = saved(tmp_path / "p", "prompt")
    (folder / "weights.safetensors").write_bytes((prompt_folder / "weights.safetensors").read_bytes())
    with pytest.raises(MinisummError, match="soft_prompt|lora"):
        load_checkpoint(folder)


def test_shapes_from_another_model_size(tmp_path):
    folder, model = saved(tmp_path, "prompt")
    wider = {"soft_prompt.embedding": torch.zeros(20, 768)}  # GPT-2 small's width, not tiny-random's 64
    save_file(wider, folder / "weights.safetensors")
    with pytest.raises(MinisummError, match=r"768.*64|64.*768"):
        load_checkpoint(folder)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_truncated_or_corrupt_safetensors(tmp_path, damage):
    folder, _ = saved(tmp_path)
    path = folder / "weights.safetensors"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00\xff" * 100, "empty": b""}[damage])
    with pytest.raises(MinisummError, match="not a readable safetensors file"):
        load_checkpoint(folder)


class _Exploit:
    """Unpickling this would create a file: proof that a loader ran code from the checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_named_like_a_checkpoint_is_refused_never_unpickled(tmp_path):
    folder, _ = saved(tmp_path)
    marker = tmp_path / "pwned"
    (folder / "weights.safetensors").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(MinisummError, match="minisumm never unpickles"):
        load_checkpoint(folder)
    assert not marker.exists()

    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    torch.save({"weights": _Exploit(marker)}, bin_folder / "pytorch_model.bin")
    with pytest.raises(MinisummError, match="pickle file that minisumm never loads"):
        load_checkpoint(bin_folder)
    assert not marker.exists()


def test_checkpoint_from_a_newer_format_version(tmp_path):
    folder, _ = saved(tmp_path)
    record = json.loads((folder / "config.json").read_text())
    record["format_version"] = FORMAT_VERSION + 1
    (folder / "config.json").write_text(json.dumps(record))
    with pytest.raises(MinisummError, match="newer than this minisumm"):
        load_checkpoint(folder)


def test_corrupt_config_json(tmp_path):
    folder, _ = saved(tmp_path)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(MinisummError, match="not valid JSON"):
        load_checkpoint(folder)
