"""The Hugging Face export carries how the model is meant to be used: its generation_config.json, its
tokenizer's length, and a model card whose code, run without minisumm, decodes as minisumm does."""

import json
import os
import re
import shutil
import subprocess
import sys

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, GenerationConfig, GPT2LMHeadModel

import minisumm
from minisumm import methods
from minisumm.batching import encode_prompt
from minisumm.config import DecodeConfig
from minisumm.errors import MinisummError
from minisumm.generate import generate
from minisumm.model import build
from minisumm.tools.checkpoint import load_checkpoint
from minisumm.tools.loading import load
from minisumm.tools.checkpoint import save_checkpoint
from minisumm.tools.export import export
from minisumm.tools.model_card import Facts, hf_card
from conftest import tiny_config
from test_checkpoint import saved

# The card's code runs in a fresh interpreter where importing minisumm fails, as on a machine without it.
WITHOUT_MINISUMM = "import sys\nsys.modules['minisumm'] = None\n"


def long_article() -> str:
    """A sample-style story of about 1,500 bytes: past tiny-random's 512 positions (one byte, one token)."""
    rows = [json.loads(line) for line in (Path(minisumm.__file__).parent / "sample_data" / "test.jsonl").open()]
    return " ".join(row["article"] for row in rows[:3])


def minisumm_summary(folder, article: str, no_repeat_ngram: int) -> list[int]:
    """Token ids of minisumm's own greedy summary of `article` (the checkpoint, LoRA merged)."""
    model, tokenizer, config = load_checkpoint(folder)
    model = methods.merge_and_unload(model)
    decode = DecodeConfig()
    prompt = encode_prompt(tokenizer, article, config.data, 0, decode.max_new_tokens)
    return generate(model, [prompt], eos_id=tokenizer.eos_token_id, pad_id=tokenizer.eos_token_id,
                    max_new_tokens=decode.max_new_tokens, no_repeat_ngram=no_repeat_ngram)[0]


@pytest.fixture(scope="module")
def hf_export(tmp_path_factory):
    """A LoRA checkpoint on tiny-random with evaluation scores beside it, exported with --to hf."""
    tmp_path = tmp_path_factory.mktemp("card")
    folder, _ = saved(tmp_path, "lora")
    metrics = {"source": str(folder.parent), "data": "sample", "split": "test", "examples": 8, "loss": 5.4321,
               "rouge": {key: {"mean": 12.345, "mid": 12.3, "low": 9.876, "high": 15.0}
                         for key in ("rouge1", "rouge2", "rougeL", "rougeLsum")},
               "decoding": {"beams": 1, "max_new_tokens": 128}}
    (folder.parent / "eval").mkdir()
    (folder.parent / "eval" / "metrics.json").write_text(json.dumps(metrics))
    return folder, export(folder, "hf", tmp_path / "hf")


def test_generation_config_holds_minisumm_decoding(hf_export):
    _, out = hf_export
    config, decode = GenerationConfig.from_pretrained(out), DecodeConfig()
    assert (config.num_beams, config.max_new_tokens, config.min_new_tokens, config.length_penalty) == (
        decode.beams, decode.max_new_tokens, decode.min_new_tokens, decode.length_penalty)
    assert config.do_sample is False and config.eos_token_id == config.pad_token_id == 256
    assert config.no_repeat_ngram_size == 0  # transformers' rule would ban copying the article (model_card)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.model_max_length == GPT2LMHeadModel.from_pretrained(out).config.n_positions == 512


def test_generate_with_no_arguments_is_minisumm_greedy_decoding(hf_export):
    folder, out = hf_export
    model, tokenizer, config = load_checkpoint(folder)
    prompt = encode_prompt(tokenizer, long_article(), config.data, 0, DecodeConfig().max_new_tokens)
    theirs = GPT2LMHeadModel.from_pretrained(out).eval().generate(torch.tensor([prompt]))[0, len(prompt):].tolist()
    ours = minisumm_summary(folder, long_article(), no_repeat_ngram=0)
    assert len(ours) > 10 and theirs == ours + [256] * (len(theirs) - len(ours))  # EOS ends theirs, if any


def run_card_code(out, article: str) -> list[str]:
    """Run each Python block of the export's README.md beside the export; their outputs."""
    blocks = re.findall(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S)
    (out.parent / "article.txt").write_text(article)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "HF_HUB_OFFLINE": "1"}
    return [subprocess.run([sys.executable, "-c", WITHOUT_MINISUMM + block], cwd=out.parent, env=env, check=True,
                           capture_output=True, text=True, timeout=180).stdout for block in blocks]


def test_card_code_decodes_a_long_article_as_minisumm_does_and_the_pipeline_does_not_crash(hf_export):
    folder, out = hf_export
    article = long_article()
    _, tokenizer, _ = load_checkpoint(folder)
    assert len(tokenizer.encode(article)) > 512  # past the model's positions: a bare forward would IndexError
    exact, pipeline_output = run_card_code(out, article)
    with_rule, without_rule = (minisumm_summary(folder, article, n) for n in (3, 0))
    assert with_rule != without_rule  # the 3-gram rule changes this summary, so the card's processor is tested
    assert exact == tokenizer.decode(with_rule, skip_special_tokens=True) + "\n"
    assert pipeline_output.strip()  # "hole" kept the prompt's last 384 tokens: no IndexError


def test_card_states_method_base_data_scores_prompt_format_and_lengths(hf_export):
    _, out = hf_export
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-generation\n")
    assert "base_model:" not in card  # tiny-random is no hub id
    assert "LoRA (rank 8, alpha 16) on attention q, k, v" in card and "| Trainable parameters | 4,096 of" in card
    assert "A demonstration model" in card and "sample news dataset: its train split, at most 32 examples" in card
    assert "| 12.35 [9.88, 15.00] | 12.35 [9.88, 15.00] | 12.35 [9.88, 15.00] | 12.35 [9.88, 15.00] | 5.432 |" in card
    # tiny_config: max length 192 - 128 new tokens = 64 for article + separator; the separator is 8 bytes
    assert '`"\\nTL;DR: "` (8 tokens)' in card and "at most 64 tokens" in card and "longer than 56 tokens" in card
    assert "max_length=56" in card and "keeps the last 384 tokens" in card
    record = json.loads((out / "minisumm_export.json").read_text())
    assert record["max_input_tokens"] == 64 and record["decoding"]["no_repeat_ngram"] == 3


def test_card_without_evaluation_says_how_to_evaluate(tmp_path):
    folder, _ = saved(tmp_path, "full")
    card = (export(folder, "hf", tmp_path / "hf") / "README.md").read_text()
    assert "No scores of this checkpoint: evaluate it" in card and "full fine-tuning" in card


def test_scores_of_another_checkpoint_stay_out_of_the_card(hf_export, tmp_path):
    folder, _ = hf_export  # its run's eval/metrics.json scores the run, that is best/
    shutil.copytree(folder, folder.parent / "last")
    card = (export(folder.parent / "last", "hf", tmp_path / "hf-last") / "README.md").read_text()
    assert "No scores of this checkpoint" in card and "12.35" not in card


def test_a_run_with_no_room_for_an_article_at_decoding_is_refused_in_one_sentence(tmp_path):
    config = tiny_config("full", tmp_path)
    config.data.max_length, config.data.max_summary_tokens = 64, 16  # valid for training, < 128 new tokens
    model, _, _, _ = build(config, load)
    save_checkpoint(tmp_path / "run" / "best", config, methods.trainable_state_dict(model))
    with pytest.raises(MinisummError, match="leaves no room for an article"):
        export(tmp_path / "run" / "best", "hf", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_a_hub_base_is_named_in_the_card_front_matter_unless_its_weights_were_random():
    config = tiny_config("lora")
    config.model.model = "openai-community/gpt2"
    facts = Facts(run="r", config=config, trainable=1, total=2, metrics=None, decode=DecodeConfig(),
                  separator_tokens=5, n_positions=1024, folder="hf")
    assert "\nbase_model: openai-community/gpt2\n" in hf_card(facts) and "A demonstration" not in hf_card(facts)
    config.model.random_init = True
    assert "base_model:" not in hf_card(facts) and "--random-init" in hf_card(facts)
