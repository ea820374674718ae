"""Fact scores on hand-made cases: copy precision (any data), fact recall and invented facts (generated stories)."""

import json

import pytest

from minisumm.cli.evaluate import fact_results, main as evaluate_main
from minisumm.config import DataConfig
from minisumm.data import SAMPLE_DIR, Example, load_file, load_splits
from minisumm.errors import MinisummError, run_cli
from minisumm.facts import copy_precision, mentions, occurs
from minisumm.metrics import lead3
from minisumm.tiny_news import synthetic_news
from minisumm.tiny_news.facts import fact_scores, prediction_facts

ARTICLE = ("Heavy rain flooded 40 homes in Valeby on Monday after 72mm fell in less than a day. Emergency crews "
           "closed 6 roads as rivers rose across the Harland Valley. \"We have not seen water this high,\" said "
           "Niamh O'Connell. Nearby Marrowcross escaped with 35mm and no reports of flooding. About 53,947 "
           "people live in the valley.")
FACTS = {"highlights": [["72", "Valeby", "Monday", "40"], ["6", "Harland Valley"]],
         "article": ["72", "Valeby", "Monday", "40", "6", "Harland Valley", "Niamh O'Connell"],
         "distractors": ["Marrowcross", "35"]}


def scores(prediction: str) -> dict:
    return fact_scores([prediction], [ARTICLE], [FACTS])


# ------------------------------------------------------------------------------------------------ copy precision
def test_mentions_are_numbers_and_capitalised_names_after_a_sentence_first_word():
    assert mentions("Heavy rain flooded 40 homes in Valeby. Niamh O'Connell's team came from the Harland Valley.") \
        == ["40", "Valeby", "O'Connell", "Harland Valley"]  # "Niamh" starts its sentence: grammar, not a name
    assert mentions("Officials in the U.S. counted 53,947 and 2.5 per cent.") == ["U.S.", "53,947", "2.5"]


def test_a_copied_name_counts_and_an_invented_number_does_not():
    assert copy_precision(["Emergency crews in Valeby closed 6 roads."], [ARTICLE]) == \
        {"copy_precision": 1.0, "mentions": 2}
    assert copy_precision(["Rain flooded 212 homes in Valeby."], [ARTICLE]) == {"copy_precision": 0.5, "mentions": 2}


def test_case_punctuation_apostrophes_and_separators_are_forgiven_but_other_numbers_are_not():
    assert occurs("VALEBY", ARTICLE) and occurs("Valeby.", "in valeby, today") is False  # the mention is a word
    assert occurs("53947", ARTICLE) and occurs("53,947", "53947 people")
    assert occurs("O’Connell", ARTICLE)  # curly apostrophe in the summary, straight in the article
    assert copy_precision(["Crews spoke to O’Connell’s team in VALEBY."], [ARTICLE])["copy_precision"] == 1.0
    assert not occurs("4", ARTICLE) and not occurs("7", ARTICLE)  # inside 40 and 72: other numbers
    assert not occurs("5", "it rose 2.5 per cent") and not occurs("2", "it rose 2.5 per cent")
    assert not occurs("Vale", ARTICLE)  # a part of a name is another name


def test_empty_predictions_state_no_fact():
    assert copy_precision(["", "   "], [ARTICLE, ARTICLE]) == {"copy_precision": None, "mentions": 0}
    assert scores("") == {"fact_recall": 0.0, "invented_facts": None, "reference_facts": 6, "prediction_facts": 0}


# ------------------------------------------------------------------------------------------------ story facts
def test_fact_recall_counts_each_reference_fact_stated():
    result = scores("72mm of rain fell on Valeby on Monday, flooding 40 homes.")
    assert result == {"fact_recall": 4 / 6, "invented_facts": 0.0, "reference_facts": 6, "prediction_facts": 4}
    assert scores("72mm fell on Valeby on Monday, flooding 40 homes. Crews closed 6 roads in the Harland Valley."
                  )["fact_recall"] == 1.0


def test_a_right_number_attached_to_the_wrong_name_is_not_recalled():
    wrong = scores("Marrowcross had 72mm of rain on Monday.")  # the distractor town with this story's rainfall
    assert wrong["fact_recall"] == 0.0 and wrong["invented_facts"] == 0.0  # nothing invented, nothing right
    right = scores("Valeby had 72mm of rain on Monday.")
    assert right["fact_recall"] == 3 / 6


def test_invented_facts_are_found_with_the_generators_vocabulary_even_at_a_sentence_start():
    result = scores("Kingwood had 72mm of rain. Rain flooded 212 homes in Valeby.")
    # Kingwood (a town the generator can write) and 212 are invented; 72 and Valeby are not
    assert result["invented_facts"] == 2 / 4 and result["prediction_facts"] == 4
    assert result["fact_recall"] == 0.0  # every sentence holds an invented fact
    assert prediction_facts("Kingwood Academy named Priya Okafor, 34, on Friday in March.") == \
        ["Kingwood", "Priya Okafor", "34", "Friday", "March"]


def test_the_references_themselves_recall_every_fact_and_invent_none():
    stories = synthetic_news.stories(5, 200)
    result = fact_scores(["\n".join(s.highlights) for s in stories], [s.article for s in stories],
                         [s.facts for s in stories])
    assert result["fact_recall"] == 1.0 and result["invented_facts"] == 0.0
    lead = fact_scores([lead3(s.article) for s in stories], [s.article for s in stories], [s.facts for s in stories])
    assert lead["invented_facts"] == 0.0 and 0.5 < lead["fact_recall"] < 1.0  # lead-3 copies, but not everything
    other = fact_scores(["\n".join(s.highlights) for s in stories[1:] + stories[:1]], [s.article for s in stories],
                        [s.facts for s in stories])  # each story summarised by the next one's highlights
    assert other["fact_recall"] < 0.05 and other["invented_facts"] > 0.9


# ------------------------------------------------------------------------------------------------ data and CLI
def test_the_shipped_sample_carries_the_generators_facts():
    test = load_splits(DataConfig(data="sample"), seed=0, splits=("test",))["test"]
    regenerated = synthetic_news.stories(20240607, 400)[360:]  # make_sample.py's seed; test is the last 40
    assert [e.facts for e in test] == [s.facts for s in regenerated]
    assert [e.article for e in test] == [s.article for s in regenerated]


def test_a_malformed_facts_field_is_one_sentence(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"article": "A story.", "highlights": "Short.", "facts": {"highlights": "x"}}) + "\n")
    with pytest.raises(MinisummError, match="Field .facts. of .*bad.jsonl line 1 is not a generated story.s facts"):
        load_file(path, DataConfig())


def test_fact_results_score_recall_only_where_every_example_has_facts():
    story = synthetic_news.stories(6, 1)[0]
    with_facts = Example("0", story.article, "\n".join(story.highlights), story.facts)
    plain = Example("1", story.article, "\n".join(story.highlights))
    assert set(fact_results([story.highlights[0]], [with_facts])) == {
        "copy_precision", "mentions", "fact_recall", "invented_facts", "reference_facts", "prediction_facts"}
    assert set(fact_results([story.highlights[0]] * 2, [with_facts, plain])) == {"copy_precision", "mentions"}


def test_evaluate_reports_the_fact_scores_of_lead3_on_the_sample(tmp_path, capsys):
    out = tmp_path / "lead3"
    assert run_cli(evaluate_main, ["--baseline", "lead3", "--data", "sample", "--out", str(out)]) == 0
    facts = json.loads((out / "metrics.json").read_text())["facts"]
    rows = [json.loads(line) for line in (SAMPLE_DIR / "test.jsonl").read_text().splitlines()]
    assert facts == fact_results([lead3(r["article"]) for r in rows],
                                 [Example(r["id"], r["article"], r["highlights"], r["facts"]) for r in rows])
    assert facts["copy_precision"] == 1.0 and facts["invented_facts"] == 0.0  # lead-3 copies every word
    printed = capsys.readouterr().out
    assert "fact recall" in printed and "copy precision" in printed
