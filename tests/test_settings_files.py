"""Every JSON file minisumm reads back is checked: a wrong type, a missing key or a value out of range is one
sentence naming the file and the key, never a TypeError from deep inside; a config without its data section
never falls back to downloading CNN/DailyMail."""

import json

import pytest

from minisumm.tools.checkpoint import load_checkpoint
from minisumm.errors import MinisummError
from minisumm.tools.training_run import start
from test_checkpoint import saved
from test_training_faults import trained_run


def edit_json(path, change):
    record = json.loads(path.read_text())
    record = change(record)
    path.write_text(json.dumps(record))


def set_key(section, key, value):
    def change(record):
        record["config"][section][key] = value
        return record
    return change


@pytest.mark.parametrize("change, names", [
    (set_key("method", "lora_rank", "8"), "method.lora_rank should be a whole number; got '8'"),
    (set_key("method", "lora_rank", 8.5), "method.lora_rank should be a whole number; got 8.5"),
    (set_key("data", "max_length", None), "data.max_length should be a whole number; got None"),
    (set_key("train", "decay_1d", 1), "train.decay_1d should be true or false"),
    (set_key("method", "lora_rank", 0), "invalid setting: --lora-rank must be a positive integer"),
    (lambda r: {**r, "config": []}, "'config' should be an object"),
    (lambda r: {**r, "config": {k: v for k, v in r["config"].items() if k != "data"}}, "has no 'data' section"),
    (lambda r: {**r, "config": {**r["config"], "data": {k: v for k, v in r["config"]["data"].items()
                                                         if k != "data"}}}, "has no data.data"),
], ids=["rank-text", "rank-fraction", "max-length-null", "bool-as-int", "rank-zero", "config-list",
        "no-data-section", "no-data-key"])
def test_a_malformed_checkpoint_config_is_one_sentence_naming_file_and_key(tmp_path, change, names):
    folder, _ = saved(tmp_path)
    edit_json(folder / "config.json", change)
    with pytest.raises(MinisummError) as raised:
        load_checkpoint(folder)
    assert str(folder / "config.json") in str(raised.value) and names in str(raised.value)


@pytest.mark.parametrize("change, names", [
    (lambda s: [], "the file should hold a JSON object"),
    (lambda s: {k: v for k, v in s.items() if k != "trainer"}, "trainer is missing"),
    (lambda s: {**s, "trainer": {k: v for k, v in s["trainer"].items() if k != "step"}}, "trainer.step is missing"),
    (lambda s: {**s, "trainer": {**s["trainer"], "step": "2"}}, "trainer.step should be of type int"),
    (lambda s: {**s, "trainer": {**s["trainer"], "step": -1}}, "trainer.step should be a whole number 0 or more"),
    (lambda s: {**s, "optimizer": {"param_groups": 3, "scalars": {}}}, "optimizer.param_groups"),
    (lambda s: {**s, "optimizer": {**s["optimizer"], "param_groups": []}}, "optimizer.param_groups should be a list"),
], ids=["list", "no-trainer", "no-step", "step-text", "step-negative", "groups-number", "groups-empty"])
def test_a_malformed_trainer_state_is_one_sentence_and_resume_refuses(tmp_path, change, names):
    trainer, run, _ = trained_run(tmp_path, steps=1)
    edit_json(run / "last" / "trainer_state.json", change)
    with pytest.raises(MinisummError, match="cannot be resumed") as raised:
        start(trainer.t.config, run, resume=True, show_progress=False)
    assert names in str(raised.value)
