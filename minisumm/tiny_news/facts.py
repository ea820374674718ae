"""Fact recall and invented facts: scoring a summary of a generated story against the facts it was built from.

A generated story knows its facts exactly (`synthetic_news.Story.facts`): which names, places, numbers and
days each highlight states, which facts the article states, and which belong to its distractors (another
town's rainfall, the other match's score). No real dataset offers that, so on these stories a summary's
facts are counted, not estimated:

- **fact recall**: the share of the reference highlights' facts that the prediction states *correctly*: in
  a sentence that also holds no distractor fact and no invented one. "Heavy rain flooded 212 homes in
  Valeby" states 212 and Valeby; "Marrowcross, not Valeby, had 212 homes flooded" puts a distractor's town
  beside the number and states neither (the right number attached to the wrong name).
- **invented facts**: the share of the prediction's facts that its article does not contain. The
  prediction's facts are found with the generator's own vocabulary (every first name and surname, town,
  region, day and month it can write, and every number), so "Kingwood Academy" is found as the town
  Kingwood even at the start of a sentence, where `minisumm.facts.mentions` would skip it.

Both are pooled over all examples (a fact is a fact, whichever story it comes from) and compared as
`minisumm.facts.occurs` compares: case, apostrophes and thousands separators forgiven, nothing else.
"""

from __future__ import annotations

import re

from minisumm.facts import occurs
from minisumm.metrics import split_sentences
from minisumm.tiny_news import synthetic_news as news


def _alternatives(words) -> str:
    return "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))


# What the generator can write as a fact, longest alternatives first: a whole name before a part of it.
FACT = re.compile(
    rf"(?<!\w)(?:(?:{_alternatives(news.FIRST)}) (?:{_alternatives(news.LAST)})"   # a person
    rf"|(?:{_alternatives(r.removeprefix('the ') for r in news.REGIONS)})"          # a region
    rf"|(?:{_alternatives(news.STEMS)})(?:{_alternatives(news.ENDINGS)})"          # a town
    rf"|(?:{_alternatives(news.LAST + news.FIRST + news.DAYS + news.MONTHS)})"     # a surname, a day, a month
    rf")(?!\w)"
    r"|\d(?:[\d,.]*\d)?")                                                            # a number


def prediction_facts(text: str) -> list[str]:
    """The facts `text` states, as the generator would write them, in order."""
    return [match.group() for match in FACT.finditer(text)]


def fact_scores(predictions: list[str], articles: list[str], facts: list[dict]) -> dict:
    """`{"fact_recall", "invented_facts", "reference_facts", "prediction_facts"}` over all examples.

    `facts[i]` is story i's ground truth (`Story.facts`: "highlights", "article", "distractors"). The two
    shares are in [0, 1], or None when there is nothing to count (no reference fact; no predicted fact).
    """
    recalled = reference_total = invented = predicted_total = 0
    for prediction, article, truth in zip(predictions, articles, facts, strict=True):
        sentences = split_sentences(prediction)
        clean = [s for s in sentences
                 if not any(occurs(d, s) for d in truth["distractors"])
                 and all(occurs(f, article) for f in prediction_facts(s))]
        reference = list(dict.fromkeys(f for highlight in truth["highlights"] for f in highlight))
        reference_total += len(reference)
        recalled += sum(any(occurs(fact, s) for s in clean) for fact in reference)
        stated = prediction_facts(prediction)
        predicted_total += len(stated)
        invented += sum(not occurs(fact, article) for fact in stated)
    return {"fact_recall": recalled / reference_total if reference_total else None,
            "invented_facts": invented / predicted_total if predicted_total else None,
            "reference_facts": reference_total, "prediction_facts": predicted_total}
