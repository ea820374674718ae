"""Sentence splitting, lead-3, ROUGE against rouge-score called directly, and the evaluation loss against
transformers' own `labels=` loss."""

import math

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer

from minisumm.errors import MinisummError
from minisumm.loss import evaluation_loss
from minisumm.metrics import lead3, rouge_scores, split_sentences
from minisumm.tools.loading import load_model_and_tokenizer

ROUGE = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


@pytest.mark.parametrize("text, expected", [
    ("The cat sat. The dog ran! Did it? Yes.", ["The cat sat.", "The dog ran!", "Did it?", "Yes."]),
    ("Mr. Smith met Dr. Jones on Main St. Anyway, U.S. officials came.",
     ["Mr. Smith met Dr. Jones on Main St. Anyway, U.S. officials came."]),
    ('He said "Stop." Then he left (quickly.) 3 men followed.',
     ['He said "Stop."', "Then he left (quickly.)", "3 men followed."]),
    ('It rose 3.5 per cent. "Good," she said. J. K. Rowling agreed.',
     ["It rose 3.5 per cent.", '"Good," she said.', "J. K. Rowling agreed."]),
    ("no capital. so no split", ["no capital. so no split"]),
    ("line one\nline two. Next\n\n  ", ["line one", "line two.", "Next"]),
    ("Wait... What?! Fine.", ["Wait...", "What?!", "Fine."]),
    ("", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_lead3_takes_three_sentences_and_respects_abbreviations():
    article = "Mr. Brown arrived on Monday. He met Mrs. Green. They talked. Nothing else happened."
    assert lead3(article) == "Mr. Brown arrived on Monday.\nHe met Mrs. Green.\nThey talked."
    assert lead3("Only one sentence here. and a lower-case tail") == "Only one sentence here. and a lower-case tail"
    assert lead3("First. Second.") == "First.\nSecond."


PAIRS = [  # (prediction, reference) written by hand
    ("The police arrested two men on Friday. They were charged with theft.",
     "Two men were arrested by police on Friday.\nBoth men face theft charges."),
    ("A storm hit the coast and thousands lost power.",
     "Thousands lost power after a storm.\nThe coast was hit hardest."),
    ("The team won the final. Fans celebrated in the streets. The coach praised the players.",
     "The team won the cup final.\nFans celebrated all night.\nThe coach praised his players."),
]


def test_rouge_equals_rouge_score_called_directly():
    predictions, references = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    result = rouge_scores(predictions, references, bootstrap=False)
    scorer = rouge_scorer.RougeScorer(ROUGE, use_stemmer=True)
    # by hand: the prediction one sentence a line, reference as is, F-measure × 100, mean over examples
    split = ["The police arrested two men on Friday.\nThey were charged with theft.",
             "A storm hit the coast and thousands lost power.",
             "The team won the final.\nFans celebrated in the streets.\nThe coach praised the players."]
    for name in ROUGE:
        direct = [100 * scorer.score(r, p)[name].fmeasure for p, r in zip(split, references)]
        assert result[name]["mean"] == pytest.approx(np.mean(direct), abs=1e-9)
        assert [e[name] for e in result["per_example"]] == pytest.approx(direct, abs=1e-9)
        assert result[name]["low"] is None


def test_rouge_lsum_uses_the_sentence_split_of_the_prediction():
    # the prediction's sentences come in the other order: one LCS over the whole text can only follow one
    # of them, the summary-level LCS of rougeLsum matches each sentence separately
    prediction = "The coach praised the players. The team won the final."
    reference = "The team won the cup final.\nThe coach praised his players."
    result = rouge_scores([prediction], [reference], bootstrap=False)
    assert result["rougeLsum"]["mean"] > result["rougeL"]["mean"] + 10
    hand_split = "The coach praised the players.\nThe team won the final."
    direct = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True).score(reference, hand_split)["rougeLsum"]
    assert result["rougeLsum"]["mean"] == pytest.approx(100 * direct.fmeasure)


def test_identical_texts_score_100():
    text = "One sentence here.\nAnd another one there."
    result = rouge_scores([text, text], [text, text])
    for name in ROUGE:
        assert result[name]["mean"] == pytest.approx(100.0)
        assert result[name]["low"] == pytest.approx(100.0) and result[name]["high"] == pytest.approx(100.0)


def test_bootstrap_intervals_contain_mid_and_are_reproducible():
    predictions = [p for p, _ in PAIRS] * 3
    references = [r for _, r in PAIRS] * 2 + ["Nothing in common at all.\nReally nothing."] * 3
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    first = rouge_scores(predictions, references, seed=7, n_samples=200)
    assert np.random.random() == before  # the caller's numpy stream is untouched
    second = rouge_scores(predictions, references, seed=7, n_samples=200)
    other_seed = rouge_scores(predictions, references, seed=8, n_samples=200)
    for name in ROUGE:
        low, mid, high = (first[name][b] for b in ("low", "mid", "high"))
        assert low <= mid <= high and low < high  # the examples differ, so the interval has a width
        assert low <= first[name]["mean"] <= high
        assert (low, mid, high) == tuple(second[name][b] for b in ("low", "mid", "high"))
    assert any(first[n]["low"] != other_seed[n]["low"] or first[n]["high"] != other_seed[n]["high"] for n in ROUGE)


def test_rouge_rejects_mismatched_or_empty_inputs():
    with pytest.raises(MinisummError, match="predictions"):
        rouge_scores(["a"], ["a", "b"])
    with pytest.raises(MinisummError, match="No predictions"):
        rouge_scores([], [])


def _right_padded_batch(lengths, summary_lengths, vocab=256, seed=0):
    """Right-padded rows (pad = EOS 256, mask 0, label -100); labels only on the last tokens of each row."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    input_ids = torch.full((len(lengths), width), 256)
    attention_mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, -100)
    for row, (length, summary) in enumerate(zip(lengths, summary_lengths)):
        input_ids[row, :length] = torch.randint(0, vocab, (length,), generator=generator)
        attention_mask[row, :length] = 1
        labels[row, length - summary:length] = input_ids[row, length - summary:length]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def test_evaluation_loss_equals_transformers_loss_on_one_batch():
    model, _ = load_model_and_tokenizer("tiny-random")
    batch = _right_padded_batch([12, 7, 10], [5, 3, 6])
    with torch.no_grad():
        expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         labels=batch["labels"]).loss.item()
    model.train()
    result = evaluation_loss(model, [batch], "cpu")
    assert model.training  # mode restored
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(expected), rel=1e-5)
    assert result["tokens"] == 5 + 3 + 6  # every labelled token is predicted from the token before it


def test_evaluation_loss_weights_tokens_across_batches():
    model, _ = load_model_and_tokenizer("tiny-random")
    small = _right_padded_batch([6, 9], [2, 3], seed=1)  # 5 label tokens
    large = _right_padded_batch([14, 11, 13], [9, 8, 10], seed=2)  # 27 label tokens
    means, counts = [], []
    with torch.no_grad():
        for batch in (small, large):
            means.append(model(**batch).loss.item())
            counts.append(int((batch["labels"][:, 1:] != -100).sum()))
    result = evaluation_loss(model, iter([small, large]), "cpu")
    assert result["tokens"] == sum(counts) == 32
    weighted = (means[0] * counts[0] + means[1] * counts[1]) / sum(counts)
    assert result["loss"] == pytest.approx(weighted, rel=1e-5)
    assert result["loss"] != pytest.approx(sum(means) / 2, rel=1e-3)  # not the mean of batch means
    assert evaluation_loss(model, [small, large], "cpu", precision="bf16")["loss"] == pytest.approx(weighted, rel=0.05)


def test_evaluation_loss_errors():
    model, _ = load_model_and_tokenizer("tiny-random")
    with pytest.raises(MinisummError, match="no label tokens"):
        evaluation_loss(model, [], "cpu")
    with pytest.raises(MinisummError, match="precision"):
        evaluation_loss(model, [], "cpu", precision="fp8")


HAND_LEAD3 = [  # (article, its first three sentences as a person splits them, the reference highlights)
    ("Mr. Brown met U.S. officials on Monday. They talked for an hour! \"Was it useful?\" asked a reporter. "
     "Nobody answered. The talks resume in May.",
     "Mr. Brown met U.S. officials on Monday.\nThey talked for an hour!\n\"Was it useful?\" asked a reporter.",
     "Mr. Brown met officials for an hour on Monday.\nTalks resume in May."),
    ("Prices rose 3.5 per cent in March. Food led the rise. Fuel fell. Economists had expected 3 per cent.",
     "Prices rose 3.5 per cent in March.\nFood led the rise.\nFuel fell.",
     "Prices rose 3.5 per cent, more than expected.\nFood costs led the rise."),
    ("A storm hit the coast (the third this year.) Roads closed. Two ferries were cancelled.",
     "A storm hit the coast (the third this year.)\nRoads closed.\nTwo ferries were cancelled.",
     "A storm closed roads and cancelled ferries."),
]


def test_evaluate_s_lead3_baseline_against_hand_split_leads_and_rouge_score(tmp_path):
    """The baseline's predictions are the leads a person would cut, and its scores are rouge-score's on them:
    nothing here comes from minisumm's own splitter or lead-3."""
    import json

    from minisumm.cli.evaluate import main as evaluate_main
    from minisumm.errors import run_cli

    data = tmp_path / "hand.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "article": a, "highlights": h}) + "\n"
                            for i, (a, _, h) in enumerate(HAND_LEAD3)))
    assert run_cli(evaluate_main, ["--baseline", "lead3", "--data", str(data), "--out", str(tmp_path / "out")]) == 0
    predictions = [json.loads(line)["prediction"] for line in (tmp_path / "out" / "predictions.jsonl").open()]
    assert predictions == [lead for _, lead, _ in HAND_LEAD3]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    scorer = rouge_scorer.RougeScorer(ROUGE, use_stemmer=True)
    direct = [scorer.score(reference, lead) for _, lead, reference in HAND_LEAD3]
    for key in ROUGE:
        assert metrics["rouge"][key]["mean"] == pytest.approx(
            100 * sum(s[key].fmeasure for s in direct) / len(direct), abs=1e-9)
