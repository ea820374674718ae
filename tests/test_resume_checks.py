"""--resume reads last/ back field by field: a damaged or edited trainer_state.json, rng.safetensors or
optimizer.safetensors is one sentence naming the file and the key, never a run that trains nothing or a
traceback half way. Non-finite weights are refused wherever a checkpoint is read, and every JSON file
minisumm writes is strict JSON (no NaN, no Infinity)."""

import json
import math
import shutil
from dataclasses import fields

import pytest
import torch
from safetensors.torch import load_file, save_file

from minisumm.cli.evaluate import main as evaluate_main
from minisumm.cli.train import main as train_main
from minisumm.errors import run_cli
from minisumm.tools.atomic import write_json
from minisumm.tools.run_folder import RunFolder
from minisumm.training import TrainState
from conftest import tiny_config
from test_cli import SMALL
from test_nothing_lost import lead3_file


def strict(text: str):
    """Parse as a strict JSON parser (jq, JavaScript) does: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A lora run stopped after 2 of its steps (last/ saved at step 2), to copy and damage."""
    root = tmp_path_factory.mktemp("resume")
    run = root / "run"
    assert run_cli(train_main, [*SMALL, "--method", "lora", "--max-steps", "2", "--eval-every", "1",
                                "--cache-dir", str(root / "cache"), "--out", str(run)]) == 0
    return run


def resume_refused(stopped_run, tmp_path, capsys, damage) -> str:
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    damage(run / "last")
    assert run_cli(train_main, ["--resume", str(run), "--max-steps", "4"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith(("note:", "warning:"))]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(run / "last") in lines[0], err
    return lines[0]


def state_edit(change):
    def damage(last):
        path = last / "trainer_state.json"
        state = json.loads(path.read_text())
        change(state)
        path.write_text(json.dumps(state))  # Python's json: writes NaN and Infinity as they come
    return damage


def tensors_edit(name, change):
    def damage(last):
        tensors = load_file(last / name)
        change(tensors)
        save_file(tensors, last / name)
    return damage


def test_a_stopped_run_resumes_when_nothing_was_damaged(stopped_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    assert run_cli(train_main, ["--resume", str(run), "--max-steps", "4"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 4


# ---------------------------------------------------------------------------------------------- item 7
@pytest.mark.parametrize("change, key", [
    (lambda s: s["trainer"].update(best_loss=math.nan), "it holds NaN, which is not a JSON number"),
    (lambda s: s["trainer"].update(best_loss=-math.inf), "it holds -Infinity, which is not a JSON number"),
    (lambda s: s["trainer"].update(best_loss=-1.0), "trainer.best_loss should be a number 0 or more"),
    (lambda s: s["trainer"].update(step=1000), "trainer.step is 1,000, beyond this run's schedule of 4 steps"),
    (lambda s: s["trainer"].update(step=10**30), "beyond this run's schedule of 4 steps"),
    (lambda s: s["trainer"].update(bad_evals=-3), "trainer.bad_evals should be a whole number 0 or more"),
    (lambda s: s["trainer"].update(best_step=3), "trainer.best_step should be a whole number from 0 to 2"),
    (lambda s: s["optimizer"]["param_groups"][0].update(eps=-1), "optimizer.param_groups[0].eps is -1, but "
                                                                 "this run's AdamW has 1e-08"),
    (lambda s: s["optimizer"]["param_groups"][0].update(betas="xx"), "optimizer.param_groups[0].betas is 'xx'"),
    (lambda s: s["optimizer"]["param_groups"][0].update(weight_decay=0.5), "param_groups[0].weight_decay is 0.5"),
    (lambda s: s["optimizer"]["param_groups"][0].update(amsgrad=True), "param_groups[0].amsgrad is True"),
    (lambda s: s["optimizer"]["param_groups"][0].pop("maximize"), "param_groups[0].maximize is missing"),
    (lambda s: s.update(wall_time_s=-5), "wall_time_s should be a number 0 or more"),
], ids=["best-nan", "best-minus-inf", "best-negative", "step-1000", "step-1e30", "bad-evals-negative",
        "best-step-ahead", "eps", "betas", "weight-decay", "amsgrad", "missing-setting", "wall-time"])
def test_every_field_of_trainer_state_is_checked_before_any_work(stopped_run, tmp_path, capsys, change, key):
    error = resume_refused(stopped_run, tmp_path, capsys, state_edit(change))
    assert "trainer_state.json" in error and key in error


def test_a_run_saved_by_another_number_of_processes_is_refused(stopped_run, tmp_path, capsys):
    """Which examples a step trains on and the schedule's length depend on the number of processes."""
    error = resume_refused(stopped_run, tmp_path, capsys, state_edit(lambda s: s.update(world_size=3)))
    assert "saved by a run of 3 processes but this one has 1" in error and "torchrun --nproc_per_node=3" in error


def test_a_trainer_state_written_before_any_finite_validation_resumes(stopped_run, tmp_path, capsys):
    """best_loss is written as null while no validation gave a finite loss; it reads back as infinity."""
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    state = json.loads((run / "last" / "trainer_state.json").read_text())
    state["trainer"]["best_loss"] = None
    (run / "last" / "trainer_state.json").write_text(json.dumps(state))
    folder = RunFolder(run, tiny_config(), is_main=True, resume=True, overwrite=False)
    _, read = folder.read_state({f.name: str(f.type) for f in fields(TrainState)})
    assert read["trainer"]["best_loss"] == math.inf


# ---------------------------------------------------------------------------------------------- item 15
@pytest.mark.parametrize("damage, key", [
    (tensors_edit("rng.safetensors", lambda t: t.update(cpu=torch.randint(0, 256, t["cpu"].shape, dtype=torch.uint8))),
     "rng.safetensors: 'cpu' is not a valid generator state"),
    (tensors_edit("rng.safetensors", lambda t: t.update(cpu=t["cpu"][:100].clone())),
     "rng.safetensors: 'cpu' is not a valid generator state"),
    (tensors_edit("rng.safetensors", lambda t: t.update(cpu=t["cpu"].float())), "'cpu' should be a 1-D tensor of bytes"),
    (lambda last: (last / "rng.safetensors").write_bytes((last / "rng.safetensors").read_bytes()[:50]),
     "rng.safetensors is not a readable safetensors file"),
    (tensors_edit("optimizer.safetensors", lambda t: t.update({"0.exp_avg": torch.zeros(3)})),
     "optimizer.safetensors: '0.exp_avg' has shape (3,)"),
    (tensors_edit("optimizer.safetensors", lambda t: t.update({"0.step": torch.tensor(-5.0)})),
     "optimizer.safetensors: '0.step' is -5, a negative step count"),
    (tensors_edit("optimizer.safetensors", lambda t: t.pop("1.exp_avg_sq")), "'1.exp_avg_sq' is missing"),
    (tensors_edit("optimizer.safetensors", lambda t: t.update({"99.exp_avg": torch.zeros(3)})),
     "'99.exp_avg' is not AdamW state of this run's parameters"),
    (tensors_edit("optimizer.safetensors", lambda t: t.update({"0.exp_avg": t["0.exp_avg"] * math.nan})),
     "optimizer.safetensors holds NaN or infinite values in '0.exp_avg'"),
], ids=["rng-random", "rng-short", "rng-float", "rng-truncated", "moment-shape", "step-negative",
        "moment-missing", "moment-unknown", "moment-nan"])
def test_a_damaged_last_checkpoint_is_one_sentence_naming_file_and_key(stopped_run, tmp_path, capsys, damage, key):
    assert key in resume_refused(stopped_run, tmp_path, capsys, damage)


# ---------------------------------------------------------------------------------------------- item 8
@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_non_finite_checkpoint_weights_are_refused_in_one_line(stopped_run, tmp_path, capsys, value):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    weights = load_file(run / "best" / "weights.safetensors")
    save_file({name: torch.full_like(t, value) for name, t in weights.items()}, run / "best" / "weights.safetensors")
    args = [str(run), "--data", str(lead3_file(tmp_path)), "--max-new-tokens", "2", "--no-progress"]
    assert run_cli(evaluate_main, args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "holds NaN or infinite values" in err
    assert not (run / "eval").exists()


def test_every_json_minisumm_writes_is_strict(tmp_path):
    write_json(tmp_path / "summary.json", {"best_val_loss": math.inf, "loss": [math.nan, 1.5]})
    assert strict((tmp_path / "summary.json").read_text()) == {"best_val_loss": None, "loss": [None, 1.5]}
    folder = RunFolder(tmp_path / "run", tiny_config(), is_main=True, resume=False, overwrite=False)
    folder.create()
    folder.log({"type": "train", "step": 1, "loss": math.inf})  # fp16: a skipped step's loss
    record = strict((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["loss"] is None and record["step"] == 1

