"""Copy precision: does a summary take its names and numbers from its own article, or make them up?

ROUGE counts shared words: a summary that says "Heavy rain flooded 212 homes in Valeby" scores almost as
well with the wrong town or the wrong number as with the right ones. Entity-level factual consistency
(Nan et al. 2021, "Entity-level Factual Consistency of Abstractive Text Summarization") asks instead
whether each named entity of the summary occurs in its source. This module computes the cheap,
reference-free form of it, on any data (CNN/DM, your own files):

    copy precision = mentions of the predictions that occur in their own article / all their mentions

A *mention* is a number ("53,947", "2.5", "66" in "66%") or a run of capitalised words ("Niamh Doyle",
"Dunwell Academy") that does not start a sentence: the first word of a sentence is capitalised by
grammar, not because it names something, so it is left out ("Heavy rain ..." mentions no name; "Doyle
said ..." mentions none either, the price of the rule).

Matching forgives what does not change a fact: case ("VALEBY" = "Valeby"), curly or straight apostrophes,
thousands separators ("53947" = "53,947"), a possessive "'s", and punctuation around a mention. It does not
forgive a different number or a different name: "Doyle" does not occur in "Doyles", "12" does not occur in
"120" or "2.12".

On the generated stories, which know their facts, `minisumm.tiny_news.facts` scores fact recall and
invented facts exactly; this score is the one that works everywhere.
"""

from __future__ import annotations

import re

from minisumm.metrics import split_sentences

# A token: a number (digits with inner separators), a dotted acronym ("U.S."), or a word (letters first;
# apostrophes and hyphens inside).
_TOKEN = re.compile(r"\d(?:[\d,.]*\d)?|(?:[A-Z]\.){2,}|[^\W\d_](?:[\w'’-]*\w)?")
_POSSESSIVE = re.compile(r"['’]s$")


def normalise(text: str) -> str:
    """Lower case, straight apostrophes, no thousands separators: the form in which mentions are compared."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)


def mentions(text: str) -> list[str]:
    """The numbers and capitalised names of `text`, in order, each as written (possessive 's removed)."""
    found = []
    for sentence in split_sentences(text):
        run: list[str] = []
        run_end = None
        for index, token in enumerate(_TOKEN.finditer(sentence)):
            word = token.group()
            is_name = index > 0 and word[0].isupper() and word != "I"
            if run and (not is_name or sentence[run_end:token.start()].strip()):  # a run ends at a gap or a word
                found.append(_POSSESSIVE.sub("", " ".join(run)))  # "Doyle's" names Doyle; "People's Party" stays
                run = []
            if word[0].isdigit():
                found.append(word)
            elif is_name:
                run.append(word)
                run_end = token.end()
        if run:
            found.append(_POSSESSIVE.sub("", " ".join(run)))
    return found


def occurs(mention: str, text: str) -> bool:
    """Whether `mention` occurs in `text` as a whole word or number (both compared `normalise`d)."""
    mention, text = normalise(mention), normalise(text)
    if mention[:1].isdigit():  # "12" is not in "120", "2.12" or "12.5"
        pattern = r"(?<![\d.])" + re.escape(mention) + r"(?!\.?\d)"
    else:
        pattern = r"(?<!\w)" + re.escape(mention) + r"(?!\w)"
    return re.search(pattern, text) is not None


def copy_precision(predictions: list[str], articles: list[str]) -> dict:
    """`{"copy_precision": share in [0, 1] or None, "mentions": count}` over all predictions together.

    Pooled over the whole set (not averaged per summary), so a summary with ten names weighs ten times one
    with one; `None` when no prediction mentions anything (an empty summary states no fact, right or wrong).
    """
    total = copied = 0
    for prediction, article in zip(predictions, articles, strict=True):
        for mention in mentions(prediction):
            total += 1
            copied += occurs(mention, article)
    return {"copy_precision": copied / total if total else None, "mentions": total}
