"""Token layout, truncation and labels worked out by hand; the cache; collate; batch order."""

import json
import random
import time
from pathlib import Path

import pytest
import torch

from minisumm import batching
from minisumm.batching import (IGNORE_INDEX, batch_order, collate, encode_example, encode_examples, encode_prompt,
                               StepBatches, padding_fraction)
from minisumm.tools.token_cache import build_datasets, tokenize_splits
from minisumm.config import DataConfig
from minisumm.data import Example
from minisumm.errors import MinisummError
from minisumm.tools.loading import load_model_and_tokenizer

GPT2_DIR = Path("/work/shared/gpt2")
CNNDM_SAMPLE = Path("/work/shared/data/cnndm-test-sample20.jsonl")
EOS = 256  # the tiny byte-level tokenizer's EOS


@pytest.fixture(scope="module")
def tok():
    return load_model_and_tokenizer("tiny-random")[1]


@pytest.fixture(scope="module")
def gpt2_tok():
    if not GPT2_DIR.is_dir():
        pytest.skip("needs GPT-2's tokenizer in /work/shared/gpt2")
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(GPT2_DIR)


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# ----------------------------------------------------------------------------------------------- layout by hand
def test_byte_tokenizer_gives_one_token_per_byte(tok):
    assert len(ids(tok, "abc|")) == 4 and len(ids(tok, "é")) == 2 and tok.eos_token_id == EOS


def test_short_example_keeps_everything(tok):
    cfg = DataConfig(max_length=40, max_summary_tokens=8, separator="|")
    out = encode_example(tok, Example("0", "abcdefghijklmnopqrstuvwxyz", "XYZ"), cfg, prefix_tokens=5)
    # 26 article + 1 separator + 3 summary + 1 EOS = 31 <= 40 - 5
    assert out["input_ids"] == ids(tok, "abcdefghijklmnopqrstuvwxyz|XYZ") + [EOS]
    assert out["labels"] == [IGNORE_INDEX] * 27 + ids(tok, "XYZ") + [EOS]


def test_article_is_cut_to_fit_and_summary_survives(tok):
    cfg = DataConfig(max_length=20, max_summary_tokens=8, separator="|")
    out = encode_example(tok, Example("0", "abcdefghijklmnopqrstuvwxyz", "XYZ"), cfg, prefix_tokens=5)
    # room for the article: 20 - 5 prefix - 1 separator - 3 summary - 1 EOS = 10 tokens, "abcdefghij"
    assert out["input_ids"] == ids(tok, "abcdefghij|XYZ") + [EOS]
    assert out["labels"] == [IGNORE_INDEX] * 11 + ids(tok, "XYZ") + [EOS]
    assert len(out["input_ids"]) + 5 == 20


def test_summary_longer_than_the_whole_budget_is_capped(tok):
    cfg = DataConfig(max_length=30, max_summary_tokens=8, separator="|")
    out = encode_example(tok, Example("0", "a" * 100, "0123456789" * 5), cfg, prefix_tokens=2)
    # summary capped at 8 ("01234567"); the article gets 30 - 2 - 1 - 8 - 1 = 18 tokens
    assert out["input_ids"] == ids(tok, "a" * 18 + "|01234567") + [EOS]
    assert out["labels"] == [IGNORE_INDEX] * 19 + ids(tok, "01234567") + [EOS]
    assert out["labels"].count(EOS) == 1  # exactly one EOS labelled


def test_no_room_for_the_article_is_a_clear_error(tok):
    cfg = DataConfig(max_length=12, max_summary_tokens=8, separator="|")
    with pytest.raises(MinisummError, match="no room for the article"):
        encode_example(tok, Example("0", "abc", "01234567"), cfg, prefix_tokens=2)
    with pytest.raises(MinisummError, match="no room for the article"):
        encode_prompt(tok, "abc", cfg, prefix_tokens=2, max_new_tokens=9)


def test_prompt_is_cut_so_generation_fits_and_ends_with_the_separator(tok):
    cfg = DataConfig(max_length=20, separator="|:")
    prompt = encode_prompt(tok, "abcdefghijklmnopqrstuvwxyz", cfg, prefix_tokens=4, max_new_tokens=6)
    # 20 - 4 prefix - 2 separator - 6 new tokens = 8 article tokens
    assert prompt == ids(tok, "abcdefgh|:")
    assert encode_prompt(tok, "abc", cfg, prefix_tokens=4, max_new_tokens=6) == ids(tok, "abc|:")


def test_separator_ids_do_not_depend_on_the_article(gpt2_tok):
    cfg = DataConfig(separator="\n\nSummary:")
    separator = ids(gpt2_tok, cfg.separator)
    # tokenised in one go, GPT-2 merges the article's last "\n" with the separator's first into "\n\n"
    assert ids(gpt2_tok, "It ended.\n" + cfg.separator)[-len(separator):] != separator
    for article in ("It ended.\n", "It ended", "Fin  "):
        prompt = encode_prompt(gpt2_tok, article, cfg, prefix_tokens=0, max_new_tokens=10)
        assert prompt[-len(separator):] == separator and prompt[:-len(separator)] == ids(gpt2_tok, article)
        out = encode_example(gpt2_tok, Example("0", article, "Done."), cfg, prefix_tokens=0)
        assert out["input_ids"][:len(prompt)] == prompt


def test_batched_encoding_matches_one_at_a_time(tok, monkeypatch):
    monkeypatch.setattr(batching, "TOKENIZE_CHUNK", 2)
    cfg = DataConfig(max_length=40, max_summary_tokens=8, separator="|")
    examples = [Example(str(i), "article " * (i + 1), f"sum {i}") for i in range(5)]
    assert encode_examples(tok, examples, cfg, 3) == [encode_example(tok, e, cfg, 3) for e in examples]


def test_utf8_round_trips_through_the_byte_tokenizer(tok):
    text = "Café naïve Zoë — 東京 und Köln 🙂👍🏽 ñ"
    assert tok.decode(ids(tok, text)) == text
    out = encode_example(tok, Example("0", text, text), DataConfig(max_length=200), prefix_tokens=0)
    summary = [t for t, label in zip(out["input_ids"], out["labels"]) if label != IGNORE_INDEX][:-1]
    assert tok.decode(summary) == text and tok.decode(out["input_ids"]).startswith(text + "\nTL;DR: ")


def test_utf8_round_trips_through_gpt2(gpt2_tok):
    text = "Café naïve Zoë — 東京 und Köln 🙂👍🏽 ñ"
    assert gpt2_tok.decode(ids(gpt2_tok, text)) == text


def test_huge_article_is_cut_quickly(tok):
    article = " ".join(f"word{i}" for i in range(100_000))
    cfg = DataConfig(max_length=1024)
    start = time.perf_counter()
    out = encode_example(tok, Example("0", article, "A short summary."), cfg, prefix_tokens=20)
    assert time.perf_counter() - start < 1.0
    assert len(out["input_ids"]) == 1024 - 20
    assert tok.decode(out["input_ids"][:50]) == article[:50]


def test_real_tokenizer_keeps_every_cnndm_example_within_1024_with_highlights_intact(gpt2_tok):
    if not CNNDM_SAMPLE.is_file():
        pytest.skip("needs /work/shared/data/cnndm-test-sample20.jsonl")
    rows = [json.loads(line) for line in CNNDM_SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    capped = 0
    for max_summary_tokens in (128, 256):  # the default cap, and one above every highlight of this sample
        cfg = DataConfig(max_summary_tokens=max_summary_tokens)
        for row in rows:
            example = Example(row["id"], row["article"], row["highlights"])
            out = encode_example(gpt2_tok, example, cfg, prefix_tokens=20)
            assert len(out["input_ids"]) + 20 <= 1024
            labelled = [t for t in out["labels"] if t != IGNORE_INDEX]
            summary = ids(gpt2_tok, row["highlights"])
            assert labelled == summary[:max_summary_tokens] + [gpt2_tok.eos_token_id]
            if len(summary) <= max_summary_tokens:
                assert gpt2_tok.decode(labelled[:-1]) == row["highlights"]
            else:
                capped += 1
    assert capped <= 2  # CNN/DM highlights average ~63 GPT-2 tokens; few pass 128


# ----------------------------------------------------------------------------------------------- cache
def examples(n=6):
    return [Example(str(i), f"Article {i} " * (i + 2), f"Summary {i}.") for i in range(n)]


def test_cache_is_reused_and_invalidated_by_each_setting(tok, tmp_path):
    base = dict(cache_dir=str(tmp_path), max_length=64, max_summary_tokens=16)
    splits = {"train": examples(), "validation": examples(2)}
    first = tokenize_splits(splits, tok, DataConfig(**base), 4)
    assert not first["train"].from_cache and not first["validation"].from_cache
    again = tokenize_splits(splits, tok, DataConfig(**base), 4)
    assert again["train"].from_cache and again["validation"].from_cache
    assert again["train"].examples == first["train"].examples
    assert again["train"].lengths == [len(e["input_ids"]) for e in first["train"].examples]
    for changed, prefix in [(dict(base, separator=" => "), 4), (dict(base, max_length=48), 4),
                            (dict(base, max_summary_tokens=3), 4), (DataConfig(**base), 5)]:
        data_cfg = changed if isinstance(changed, DataConfig) else DataConfig(**changed)
        result = tokenize_splits(splits, tok, data_cfg, prefix)
        assert not result["train"].from_cache
        assert result["train"].examples == encode_examples(tok, splits["train"], data_cfg, prefix)
    edited = {"train": examples()[:-1] + [Example("5", "Another article.", "Summary 5.")]}
    assert not tokenize_splits(edited, tok, DataConfig(**base), 4)["train"].from_cache
    files = list((tmp_path / "tokenized").iterdir())
    assert files and all(f.suffix == ".safetensors" for f in files)  # no pickles, no temporary leftovers


def test_cache_ignores_a_damaged_file(tok, tmp_path):
    data_cfg = DataConfig(cache_dir=str(tmp_path), max_length=64, max_summary_tokens=16)
    splits = {"train": examples()}
    tokenize_splits(splits, tok, data_cfg, 0)
    (cached,) = (tmp_path / "tokenized").iterdir()
    cached.write_bytes(cached.read_bytes()[:40])
    result = tokenize_splits(splits, tok, data_cfg, 0)
    assert not result["train"].from_cache and len(result["train"]) == 6
    assert tokenize_splits(splits, tok, data_cfg, 0)["train"].from_cache


def test_build_datasets_notices_an_edited_data_file(tok, tmp_path):
    path = tmp_path / "news.jsonl"

    def write(word):
        path.write_text("".join(json.dumps({"article": f"{word} story {i}.", "highlights": f"{word} {i}."}) + "\n"
                                for i in range(10)))
    write("First")
    data_cfg = DataConfig(data=str(path), cache_dir=str(tmp_path / "cache"), max_length=64, max_summary_tokens=16)
    raw, tokenized = build_datasets(data_cfg, tok, 0, seed=1)
    assert set(raw) == set(tokenized) == {"train", "validation", "test"}
    assert [len(raw[s]) for s in raw] == [len(tokenized[s]) for s in tokenized] == [8, 1, 1]
    assert not tokenized["train"].from_cache
    assert build_datasets(data_cfg, tok, 0, seed=1)[1]["train"].from_cache
    write("Fresh")  # same size, new content
    raw, tokenized = build_datasets(data_cfg, tok, 0, seed=1)
    assert not tokenized["train"].from_cache and raw["train"][0].article.startswith("Fresh")
    assert tok.decode(tokenized["train"][0]["input_ids"]).startswith("Fresh")


# ----------------------------------------------------------------------------------------------- collate
def test_collate_pads_right_and_never_labels_padding():
    a = {"input_ids": [5, 6, EOS], "labels": [IGNORE_INDEX, 6, EOS]}
    b = {"input_ids": [1, 2, 3, 4, EOS], "labels": [IGNORE_INDEX, IGNORE_INDEX, 3, 4, EOS]}
    batch = collate([a, b], pad_id=EOS)
    assert batch["input_ids"].tolist() == [[5, 6, EOS, EOS, EOS], [1, 2, 3, 4, EOS]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, EOS, IGNORE_INDEX, IGNORE_INDEX],
                                        [IGNORE_INDEX, IGNORE_INDEX, 3, 4, EOS]]
    # each row's labelled target positions (labels[:, 1:]), then a spare unlabelled one: Q = 3, b's count
    assert batch["label_slots"].tolist() == [[0, 1, 2], [1, 2, 3]]
    assert batch["labels"][0, 1 + 2] == IGNORE_INDEX  # a's spare slot's target
    assert all(t.dtype == torch.long for t in batch.values())
    assert all(batch[name].shape == (2, 5) for name in ("input_ids", "attention_mask", "labels"))


def test_collate_with_nothing_labelled_has_no_slots():
    batch = collate([{"input_ids": [5, 6], "labels": [IGNORE_INDEX] * 2}], pad_id=EOS)
    assert batch["label_slots"].shape == (1, 0)


def test_validation_batches_are_collated_as_they_are_reached(monkeypatch):
    examples = [{"input_ids": [1] * n, "labels": [IGNORE_INDEX] * (n - 1) + [EOS]} for n in range(2, 9)]
    batches = StepBatches(examples, examples, EOS, batch_size=2, grad_accum=1, seed=0, group_by_length=False)
    collated = []
    monkeypatch.setattr(batching, "collate", lambda *args: collated.append(args) or collate(*args))
    validation = batches.validation()
    assert len(validation) == 4 and not collated  # sized for a progress bar, nothing built yet
    first = next(iter(validation))
    assert len(collated) == 1 and first["input_ids"].shape == (2, 3)  # the shortest two, sorted by length


def test_prefetched_step_is_the_step_collated_again():
    examples = [{"input_ids": [7] * n, "labels": [IGNORE_INDEX] + [7] * (n - 1)} for n in range(2, 20)]
    batches = StepBatches(examples, examples, EOS, batch_size=3, grad_accum=2, seed=0, group_by_length=True)
    fresh = batches.for_step(1)
    batches.prefetch(1)
    prefetched = batches.for_step(1)
    for a, b in zip(prefetched, fresh, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert batches.for_step(1) is not prefetched  # used once: asking again collates afresh


# ----------------------------------------------------------------------------------------------- batch order
LENGTHS = [random.Random(i).randint(20, 1000) for i in range(203)]


@pytest.mark.parametrize("shuffle,group", [(True, True), (True, False), (False, True)])
def test_batch_order_covers_every_index_once(shuffle, group):
    batches = batch_order(LENGTHS, 8, seed=0, epoch=0, shuffle=shuffle, group_by_length=group, mega_batch=5)
    assert sorted(i for b in batches for i in b) == list(range(203))
    assert sorted(len(b) for b in batches) == [3] + [8] * 25  # the last partial batch is kept


def test_batch_order_without_shuffle_is_sequential():
    assert batch_order([1] * 7, 3, seed=9, epoch=4, shuffle=False) == [[0, 1, 2], [3, 4, 5], [6]]


def test_batch_order_is_seeded_by_seed_and_epoch_only():
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    one = batch_order(LENGTHS, 8, seed=0, epoch=1)
    assert random.getstate() == python_state and torch.equal(torch.get_rng_state(), torch_state)
    random.seed(123)
    torch.manual_seed(123)
    assert batch_order(LENGTHS, 8, seed=0, epoch=1) == one
    assert batch_order(LENGTHS, 8, seed=0, epoch=2) != one
    assert batch_order(LENGTHS, 8, seed=1, epoch=1) != one
    random.setstate(python_state)
    torch.set_rng_state(torch_state)


def test_grouping_by_length_lowers_padding():
    grouped = padding_fraction(batch_order(LENGTHS, 8, seed=0, epoch=0, group_by_length=True), LENGTHS)
    plain = padding_fraction(batch_order(LENGTHS, 8, seed=0, epoch=0, group_by_length=False), LENGTHS)
    assert grouped < plain / 3
    grouped_batch = batch_order(LENGTHS, 8, seed=0, epoch=0, mega_batch=50)[0]
    assert max(LENGTHS[i] for i in grouped_batch) - min(LENGTHS[i] for i in grouped_batch) < 200


def test_padding_fraction_by_hand():
    # batch [0, 1] pads to 4: 2 of 8 positions; batch [2, 3] pads to 3: none of 6 → 2 / 14
    assert padding_fraction([[0, 1], [2, 3]], [2, 4, 3, 3]) == pytest.approx(2 / 14)
    assert padding_fraction([[0], [1]], [5, 7]) == 0.0
