"""`--no-speedups` runs the lesson's own code: `minisumm.loss.label_loss`, GPT-2's attention and GELU, LoRA
beside its weights. It trains every method to the losses and gradients of the default fast path (dropout off,
where the two paths draw no random numbers), and train.py, evaluate.py and summarize all take it.

What runs is seen from inside: counting wrappers on the plain loss's forward (`minisumm.loss.body`), the
labelled-positions forward (`labelled_hidden`), the block attention and the fused GELU."""

import json

import pytest
import torch

from conftest import tiny_config
from minisumm import loss, methods
from minisumm.cli.evaluate import main as evaluate_main
from minisumm.cli.summarize import main as summarize_main
from minisumm.cli.train import main as train_main
from minisumm.errors import run_cli
from minisumm.speedups import block_attention, fused_gelu, labelled_positions
from minisumm.tools.loading import load
from minisumm.tools.training_run import train
from minisumm.training import Step, Validation, fit, setup


@pytest.fixture
def calls(monkeypatch):
    """How often each path ran: the plain loss, the labelled-positions loss, block attention, the fused GELU."""
    counts = {"plain loss": 0, "labelled positions": 0, "block attention": 0, "fused GELU": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(loss, "body", counting("plain loss", loss.body))
    monkeypatch.setattr(labelled_positions, "labelled_hidden",
                        counting("labelled positions", labelled_positions.labelled_hidden))
    monkeypatch.setattr(block_attention.CausalDropoutAttention, "apply",
                        counting("block attention", block_attention.CausalDropoutAttention.apply))
    monkeypatch.setattr(fused_gelu.TanhGELU, "forward", counting("fused GELU", fused_gelu.TanhGELU.forward))
    return counts


def trained(method: str, speedups: bool, tmp_path):
    """Three optimizer steps of the lesson's loop on tiny-random without dropout: the events, and the gradient
    of every step by parameter name, as the update receives it."""
    config = tiny_config(method, tmp_path, max_steps=3, eval_every=2, lr=1e-2, speedups=speedups)
    config.model.dropout = 0.0
    t = setup(config, load=load)
    names = {id(p): name for name, p in t.model.named_parameters()}
    gradients = []
    t.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: gradients.append(
        {names[id(p)]: p.grad.clone() for group in optimizer.param_groups for p in group["params"]}))
    return list(fit(t)), gradients, t


@pytest.mark.parametrize("method", ["prompt", "prefix", "lora", "last-layers", "full"])
def test_the_plain_path_trains_every_method_to_the_fast_path_s_losses_and_gradients(method, tmp_path, calls):
    fast, fast_gradients, _ = trained(method, True, tmp_path)
    assert calls["labelled positions"] > 0 and calls["fused GELU"] > 0 and calls["plain loss"] == 0
    calls.update(dict.fromkeys(calls, 0))
    plain, plain_gradients, t = trained(method, False, tmp_path)
    assert calls["plain loss"] > 0 and calls["labelled positions"] == calls["fused GELU"] == 0
    assert t.loss_fn is loss.label_loss and t.model.config._attn_implementation != block_attention.NAME

    assert [type(e) for e in plain] == [type(e) for e in fast] == [Validation, Step, Step, Validation, Step,
                                                                    Validation]
    for a, b in zip(plain, fast):
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
        if isinstance(a, Step):
            assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-4)
    assert len(plain_gradients) == len(fast_gradients) == 3
    for a, b in zip(plain_gradients, fast_gradients):
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6, msg=name)
    assert plain[-1].loss < plain[0].loss  # it trained: the comparison is not between two idle runs


def test_with_dropout_the_plain_path_runs_no_speedup_at_all(tmp_path, calls):
    """Dropout on, as in real training: the fast path runs the block attention (CPU, dropout); the plain path
    runs GPT-2's own attention, GELU and `minisumm.loss` in every step and every validation."""
    for speedups in (True, False):
        config = tiny_config("lora", tmp_path, max_steps=2, eval_every=1, speedups=speedups)
        config.model.dropout = 0.1
        calls.update(dict.fromkeys(calls, 0))
        events = list(fit(setup(config, load=load)))
        if speedups:
            assert min(calls["labelled positions"], calls["block attention"], calls["fused GELU"]) > 0
            assert calls["plain loss"] == 0
        else:
            assert calls["labelled positions"] == calls["block attention"] == calls["fused GELU"] == 0
            # every micro-batch of every step (2 a step) and every validation batch (2 each, 3 validations)
            assert calls["plain loss"] == 2 * 2 + 3 * 2
        assert len(events) == 5


def test_train_py_takes_no_speedups_and_records_it(tmp_path, calls):
    run = tmp_path / "run"
    flags = ["--model", "tiny-random", "--data", "sample", "--method", "prompt", "--train-size", "16",
             "--validation-size", "8", "--max-length", "192", "--max-summary-tokens", "48", "--batch-size", "4",
             "--grad-accum", "1", "--max-steps", "2", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert run_cli(train_main, [*flags, "--no-speedups", "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["config"]["train"]["speedups"] is False
    assert calls["plain loss"] > 0 and calls["labelled positions"] == 0


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """A LoRA run whose B matrices moved away from zero, so that merging them changes the weights."""
    tmp_path = tmp_path_factory.mktemp("lora")
    train(tiny_config("lora", tmp_path, max_steps=4, eval_every=4, lr=3e-2), tmp_path / "run",
          show_progress=False)
    return tmp_path / "run"


def test_evaluate_with_no_speedups_scores_the_same_through_the_plain_loss_and_unmerged_lora(
        lora_run, tmp_path, calls, monkeypatch):
    merges = []
    real_merge = methods.merge
    monkeypatch.setattr(methods, "merge", lambda model: (merges.append(True), real_merge(model)))
    results = {}
    for flags in ([], ["--no-speedups"]):
        out = tmp_path / ("plain" if flags else "fast")
        calls.update(dict.fromkeys(calls, 0))
        assert run_cli(evaluate_main, [str(lora_run), "--split", "validation", "--limit", "4", "--max-new-tokens",
                                       "8", "--device", "cpu", "--out", str(out), *flags]) == 0
        results[out.name] = json.loads((out / "metrics.json").read_text())
        results[out.name]["predictions"] = (out / "predictions.jsonl").read_text()
        assert (calls["plain loss"] > 0) == bool(flags) and (calls["labelled positions"] > 0) == (not flags)
    assert merges == [True]  # the fast path merged LoRA for decoding; the plain one kept it beside its weights
    assert results["plain"]["loss"] == pytest.approx(results["fast"]["loss"], rel=1e-5)
    assert results["plain"]["predictions"] == results["fast"]["predictions"]


def test_summarize_with_no_speedups_keeps_lora_unmerged_and_writes_the_same_summary(lora_run, tmp_path, capsys,
                                                                                     monkeypatch):
    article = tmp_path / "article.txt"
    article.write_text("The council of Lowtown voted on Monday to open a new bridge over the river. " * 3)
    merged = []
    real_merge = methods.merge
    monkeypatch.setattr(methods, "merge", lambda model: (merged.append(True), real_merge(model)))
    summaries = []
    for flags in ([], ["--no-speedups"]):
        assert run_cli(summarize_main, [str(lora_run), str(article), "--max-new-tokens", "12", "--device", "cpu",
                                        *flags]) == 0
        summaries.append(capsys.readouterr().out)
    assert merged == [True]
    assert summaries[0] == summaries[1] and summaries[0].strip()
