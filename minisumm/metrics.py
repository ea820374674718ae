"""ROUGE with bootstrap intervals, and the lead-3 baseline (the evaluation loss is `minisumm.loss`).

ROUGE (Lin 2004) is computed by Google's `rouge-score` package, the implementation behind published CNN/DM
tables: `RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)`, F-measures × 100,
averaged over examples, with 95% intervals from its `BootstrapAggregator`.

The CNN/DM "ROUGE-L" of papers is `rougeLsum`, the summary-level LCS over sentences, and `rouge-score`
finds sentences by splitting on "\\n". References (the highlights) already carry one sentence a line;
model outputs do not, so predictions go through `split_sentences` first. Without that, `rougeLsum`
silently equals `rougeL`, about 11 points lower on lead-3.

Lead-3 (the first three sentences of the article; See et al. 2017 report 40.34 / 17.70 / 36.57 on the test
set) is the baseline every CNN/DM model has to beat.
"""

from __future__ import annotations

import re

import numpy as np

from minisumm.errors import MinisummError

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}  # for people
BASELINES = ("lead3", "zero-shot")  # what evaluate.py --baseline scores: lead-3, and the untrained model

# Words ending in "." that rarely end a sentence (compared lower-case, without the final dot). "etc." is left
# out on purpose: in news text it ends a sentence more often than not.
ABBREVIATIONS = frozenset("""
    mr mrs ms dr prof st jr sr rev gen col lt sgt capt cmdr adm gov sen rep pres supt det insp
    mt ft no nos vs inc ltd co corp bros dept est approx fig
    jan feb mar apr jun jul aug sep sept oct nov dec
""".split())

# A sentence end: . ! or ? (possibly repeated, as in "?!" or "..."), then any closing quotes or brackets,
# then whitespace, then something that can start a sentence (an optional opening quote or bracket before
# an upper-case letter or a digit).
_SENTENCE_END = re.compile(r"""[.!?]+['"”’)\]]*(\s+)(?=['"“‘(\[]?[A-Z0-9])""")
# An initial ("J.") or a dotted acronym ("U.S.", "U.N.", "e.g.", "a.m."): letter-dot pairs.
_DOTTED = re.compile(r"[A-Z]\.|(?:[A-Za-z]\.){2,}")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences: a small rule-based splitter good enough for news text and model output.

    Rules, in order:
    - every newline ends a sentence (highlights and some articles already carry one sentence a line);
    - inside a line, a sentence ends after `.`, `!` or `?` (optionally followed by closing quotes or
      brackets) when whitespace and then an upper-case letter, a digit or an opening quote follow;
    - except after a known abbreviation (`Mr.`, `Dr.`, `St.`, `Jan.`, `No.`, ... see `ABBREVIATIONS`) or
      dotted initials (`J.`, `U.S.`, `e.g.`): "Mr. Smith met U.S. officials." stays one sentence. The price
      is that a sentence really ending in "U.S." is joined to the next one.
    Sentences are stripped; empty ones are dropped.
    """
    sentences = []
    for line in text.splitlines():
        start = 0
        for match in _SENTENCE_END.finditer(line):
            if _ends_with_abbreviation(line[start:match.start() + 1]):
                continue
            sentences.append(line[start:match.start(1)])
            start = match.end(1)
        sentences.append(line[start:])
    return [s.strip() for s in sentences if s.strip()]


def _ends_with_abbreviation(text: str) -> bool:
    """True when `text` (ending at a '.', '!' or '?') ends with an abbreviation or dotted initials."""
    if not text.endswith("."):
        return False
    words = text.split()
    last_word = words[-1].lstrip("'\"“‘([") if words else ""
    return last_word[:-1].lower() in ABBREVIATIONS or _DOTTED.fullmatch(last_word) is not None


def lead3(article: str) -> str:
    """The lead-3 baseline: the article's first three sentences, one a line (fewer if it has fewer)."""
    return "\n".join(split_sentences(article)[:3])


def rouge_scores(predictions: list[str], references: list[str], *, bootstrap: bool = True, seed: int = 0,
                 n_samples: int = 1000) -> dict:
    """ROUGE-1/2/L/Lsum F-measures (× 100) of `predictions` against `references`, averaged over examples.

    References are used as given ("\\n" between sentences, as CNN/DM highlights are); each prediction is
    re-split one sentence a line with `split_sentences` (whatever line breaks it had count as sentence ends).

    Returns `{rouge_type: {"mean", "mid", "low", "high"}, ..., "per_example": [{rouge_type: F}, ...]}`:
    `mean` is the plain average over examples; `mid`, `low`, `high` are the median and the 2.5th/97.5th
    percentiles of `n_samples` bootstrap means from `rouge_score.scoring.BootstrapAggregator` (what most
    published tables and Hugging Face `evaluate` report as the score). The aggregator draws from numpy's
    global RNG: it is seeded with `seed` for the call and its previous state restored afterwards, so the
    intervals are reproducible and the caller's numpy randomness is untouched. With `bootstrap=False`,
    `mid` is the mean and `low`/`high` are None.
    """
    from rouge_score import rouge_scorer, scoring

    if len(predictions) != len(references):
        raise MinisummError(f"Got {len(predictions)} predictions for {len(references)} references; ROUGE needs "
                            f"exactly one prediction per reference.")
    if not predictions:
        raise MinisummError("No predictions to score; ROUGE needs at least one prediction and reference.")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    aggregator = scoring.BootstrapAggregator(confidence_interval=0.95, n_samples=n_samples)
    per_example = []
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, "\n".join(split_sentences(prediction)))  # target first, then prediction
        aggregator.add_scores(scores)
        per_example.append({name: 100 * scores[name].fmeasure for name in ROUGE_TYPES})

    result: dict = {}
    for name in ROUGE_TYPES:
        mean = float(np.mean([example[name] for example in per_example]))
        result[name] = {"mean": mean, "mid": mean, "low": None, "high": None}
    if bootstrap:
        saved_state = np.random.get_state()
        np.random.seed(seed)
        try:
            intervals = aggregator.aggregate()
        finally:
            np.random.set_state(saved_state)
        for name in ROUGE_TYPES:
            for bound in ("low", "mid", "high"):
                result[name][bound] = 100 * float(getattr(intervals[name], bound).fmeasure)
    result["per_example"] = per_example
    return result
