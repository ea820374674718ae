"""tiny-news: the invented-news generator, its pretraining, the shipped model, and learning on top of it.

A short pretraining (a smaller recipe than the real tiny-news, ~10 s) is built once for this module for the
tests of the pretraining code; the shipped model (`minisumm/tiny_news/model/`) is checked against its
recorded recipe and curve, probed for copying, and fine-tuned by the learning tests.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from minisumm.tiny_news import MODEL_DIR, pretrain, synthetic_news
from minisumm.tiny_news.probe import copying_probe
from minisumm.config import METHODS, TINY_NEWS_LR
from minisumm.data import SAMPLE_DIR
from minisumm.errors import MinisummError
from minisumm.tools.loading import load_model_and_tokenizer
from minisumm.tools.training_run import train

# Small enough for ~10 s on 2 CPU cores, large enough to learn the articles' language (loss 6.2 -> 2.8).
QUICK = pretrain.Recipe(stories=1500, vocab_size=512, n_layer=2, n_head=2, n_embd=64, n_positions=512,
                        block_size=128, batch_size=16, steps=300, lr=5e-3, warmup_steps=10)
SHIPPED = json.loads((MODEL_DIR / "pretrain.json").read_text())


def shipped_rows():
    return [json.loads(line) for split in ("train", "validation", "test")
            for line in (SAMPLE_DIR / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def quick_news(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrained") / "tiny-news-quick"
    model, tokenizer, report = pretrain.pretrain(folder, QUICK, show_progress=False)
    return folder, model, tokenizer, report


# ------------------------------------------------------------------------------------------------ generator
def test_generator_is_deterministic_for_a_seed_and_differs_across_seeds():
    first, again, other = (synthetic_news.stories(seed, 50) for seed in (1, 1, 2))
    assert first == again
    assert not {s.article for s in first} & {s.article for s in other}


def test_stories_vary_in_facts_and_carry_distractors():
    stories = synthetic_news.stories(3, 300)
    leads = [story.article.split(". ")[0] for story in stories]
    assert len(set(leads)) == len(leads)  # no two stories open with the same sentence
    with_distractor = 0
    for article, highlights, _ in stories:
        numbers_in_article = set(re.findall(r"\d[\d,]*\d|\d", article))
        numbers_in_summary = set(re.findall(r"\d[\d,]*\d|\d", " ".join(highlights)))
        with_distractor += bool(numbers_in_article - numbers_in_summary - {"1980"})
        assert 2 <= len(highlights) <= 4
    assert with_distractor > 0.8 * len(stories)  # most articles hold numbers the summary must leave out


def test_every_highlight_is_a_rewording_whose_facts_are_in_the_article():
    for article, highlights, facts in synthetic_news.stories(4, 300):
        synthetic_news.check(article, highlights, facts)
        assert all(h not in article for h in highlights)
    with pytest.raises(AssertionError):
        synthetic_news.check("Word " * 100, ["Somebody Else won 12 votes.", "Another line here."])


# ------------------------------------------------------------------------------------------------ pretraining
def test_pretraining_text_has_no_separator_no_highlight_and_no_shipped_story():
    recipe = pretrain.Recipe(stories=800)
    articles = pretrain.corpus(recipe)
    text = "\n".join(articles)
    assert len(articles) == 800
    assert "TL;DR" not in text and pretrain.SEPARATOR not in text
    assert not set(articles) & {row["article"] for row in shipped_rows()}
    # the same stories' highlights: none of them appears anywhere in the pretraining text
    stories = synthetic_news.stories(pretrain.CORPUS_SEED + recipe.seed, 800, restate=recipe.restate,
                                     exclude={row["article"] for row in shipped_rows()})
    assert [s.article for s in stories] == articles
    assert not any(h in text for s in stories for h in s.highlights)


def test_pretraining_learns_the_articles(quick_news):
    _, _, _, report = quick_news
    assert report["validation_loss_start"] > 6.0  # about ln(512): a uniform guess
    assert report["validation_loss_end"] < 0.6 * report["validation_loss_start"]


def test_the_shipped_folder_loads_in_plain_transformers_with_equal_logits(tmp_path):
    folder = MODEL_DIR
    model, tokenizer = load_model_and_tokenizer("tiny-news")
    text = "Heavy rain flooded 40 homes in Ashford on Monday."
    model.eval()
    with torch.no_grad():
        expected = model(**tokenizer(text, return_tensors="pt")).logits[0]
    script = ("import sys, torch\n"
              "from transformers import AutoTokenizer, GPT2LMHeadModel\n"
              "tok = AutoTokenizer.from_pretrained(sys.argv[1]); m = GPT2LMHeadModel.from_pretrained(sys.argv[1])\n"
              "assert 'minisumm' not in sys.modules\n"
              "with torch.no_grad(): logits = m(**tok(sys.argv[2], return_tensors='pt')).logits[0]\n"
              "torch.save(logits, sys.argv[3])\n")
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess.run([sys.executable, "-c", script, str(folder), text, str(tmp_path / "logits.pt")], check=True,
                   env=env, cwd=tmp_path)
    loaded = torch.load(tmp_path / "logits.pt", weights_only=True)
    assert loaded.shape == expected.shape
    torch.testing.assert_close(loaded, expected, rtol=1e-4, atol=1e-4)
    assert {"model.safetensors", "config.json", "tokenizer.json", "pretrain.json"} <= set(os.listdir(folder))
    assert not list(folder.glob("*.bin"))


def test_pretraining_is_deterministic_on_cpu(tmp_path):
    recipe = pretrain.Recipe(stories=300, vocab_size=300, n_layer=1, n_head=2, n_embd=32, n_positions=128,
                             block_size=64, batch_size=4, steps=5, warmup_steps=1)
    for name in ("a", "b"):
        pretrain.pretrain(tmp_path / name, recipe, show_progress=False)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()


def test_pretrain_cli_refuses_an_existing_folder(tmp_path):
    with pytest.raises(MinisummError, match="already exists"):
        pretrain.main(["--out", str(tmp_path)])


@pytest.mark.parametrize("flags, flag", [(["--steps", "0"], "--steps"), (["--block-size", "4000"], "--block-size"),
                                         (["--vocab-size", "100"], "--vocab-size"), (["--lr", "nan"], "--lr")])
def test_pretrain_cli_refuses_a_recipe_that_cannot_train_before_any_work(flags, flag, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrain, "corpus", lambda *a: pytest.fail("started work on a bad recipe"))
    with pytest.raises(MinisummError, match=f"{flag} must") as error:
        pretrain.main(["--out", str(tmp_path / "new"), *flags])
    assert "\n" not in str(error.value) and not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------------------------ shipped model
def test_the_shipped_model_is_what_the_recipe_in_this_code_builds():
    assert SHIPPED["recipe"] == dataclasses.asdict(pretrain.Recipe())  # the defaults are the shipped recipe
    assert SHIPPED["recipe_key"] == pretrain.Recipe().key()
    model, tokenizer = load_model_and_tokenizer("tiny-news")
    assert SHIPPED["parameters"] == sum(p.numel() for p in model.parameters())
    config = pretrain.model_config(pretrain.Recipe(), len(tokenizer), tokenizer.eos_token_id)
    keys = ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "attn_pdrop", "resid_pdrop", "embd_pdrop")
    assert {k: getattr(model.config, k) for k in keys} == {k: getattr(config, k) for k in keys}
    # pretrained without dropout, so fine-tuned without it unless --dropout asks: a frozen base that never
    # met dropout is damaged by it, and prompt tuning, prefix tuning and LoRA cannot adapt to the damage
    assert model.config.resid_pdrop == model.config.embd_pdrop == model.config.attn_pdrop == 0.0
    assert (MODEL_DIR / "model.safetensors").stat().st_size < 20 * 2**20


@pytest.mark.slow
def test_a_short_rebuild_follows_the_recorded_curve_with_the_same_tokenizer():
    model, tokenizer, report = pretrain.pretrain(None, pretrain.Recipe(), show_progress=False, stop_after=30)
    shipped_tokenizer = load_model_and_tokenizer("tiny-news")[1]
    assert tokenizer.get_vocab() == shipped_tokenizer.get_vocab()
    rebuilt, recorded = report["train_loss_curve"], SHIPPED["train_loss_curve"][:3]
    assert [step for step, _ in rebuilt] == [step for step, _ in recorded] == [10, 20, 30]
    for (_, loss), (_, expected) in zip(rebuilt, recorded):  # bit-for-bit on one machine; across CPUs and
        assert loss == pytest.approx(expected, rel=2e-3)     # thread counts the sums run in another order


def test_the_shipped_model_copies_what_it_has_read_and_a_random_one_does_not():
    model, tokenizer = load_model_and_tokenizer("tiny-news")
    probe = copying_probe(model, tokenizer)
    recorded = SHIPPED["copying_probe_end"]  # recomputed now, equal to what the build recorded (there with the
    for kind in ("name", "number"):          # fused GELU, here with GPT-2's own: equal to float rounding)
        assert probe[kind] == pytest.approx(recorded[kind], abs=2e-3)
    assert probe["name"]["gain"] > 2.0  # nats: it completes a name it has read (numbers: not yet, ~0.1)
    random_model = pretrain_random(model.config)
    assert abs(copying_probe(random_model, tokenizer)["name"]["gain"]) < 0.3  # the same architecture, untrained
    assert abs(SHIPPED["copying_probe_start"]["name"]["gain"]) < 0.3  # and the build's own step 0
    gains = [check["copying_probe"]["name"]["gain"] for check in SHIPPED["checks"]]
    assert gains[-1] > gains[0] + 2.0 and max(gains[:6]) < 0.3  # it came late: after 14,400 of 24,000 steps


def pretrain_random(config):
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(config).eval()


# ------------------------------------------------------------------------------------------------ learning
def fine_tune(method: str, model: str, tmp_path: Path, random_init: bool = False) -> tuple[float, float]:
    """64 steps on 128 sample stories at tiny-news' preset rate; (step-0, best) validation loss on 16 others."""
    config = tiny_config(method, tmp_path, batch_size=8, grad_accum=1, epochs=4, lr=TINY_NEWS_LR[method],
                         warmup_ratio=0.1, eval_every=16)
    config.model.model, config.model.random_init = model, random_init
    config.data.train_size, config.data.validation_size = "128", "16"
    config.data.max_length, config.data.max_summary_tokens = 320, 80
    run = tmp_path / f"{method}-{'random' if random_init else 'pretrained'}"
    summary = train(config, run, show_progress=False)
    first = json.loads(next(line for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line))
    return first["val_loss"], summary["best_val_loss"]


@pytest.mark.slow
def test_every_method_learns_on_held_out_stories_and_more_weights_learn_faster(quick_news, tmp_path):
    results = {method: fine_tune(method, str(quick_news[0]), tmp_path) for method in METHODS}
    for method, (start, best) in results.items():
        assert best < 0.985 * start, method  # measured: prompt -2.4%, lora -10%, last-layers -19%, full -26%
    best = {method: result[1] for method, result in results.items()}
    assert best["full"] < best["last-layers"] < best["lora"] < best["prompt"]


@pytest.mark.slow
def test_lora_on_the_pretrained_model_beats_lora_on_the_same_model_left_random(quick_news, tmp_path):
    _, best = fine_tune("lora", str(quick_news[0]), tmp_path)
    _, best_random = fine_tune("lora", str(quick_news[0]), tmp_path, random_init=True)
    assert best < best_random - 1.0  # what pretraining buys, with the same method, steps and data

