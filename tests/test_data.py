"""Data sources → Examples: the shipped sample, local files, CNN/DailyMail (faked), and every bad input."""

import csv
import importlib.util
import json
import warnings
from pathlib import Path

import pytest

from minisumm.config import DataConfig
from minisumm.data import SAMPLE_DIR, Example, load_file, load_splits
from minisumm.errors import MinisummError


def rows(n, start=0):
    return [{"id": f"r{i}", "article": f"Article number {i} says something.", "highlights": f"Summary {i}."}
            for i in range(start, start + n)]


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    return path


def cfg(data, **overrides):
    return DataConfig(data=str(data), **overrides)


# ----------------------------------------------------------------------------------------------- the sample
def test_sample_has_three_disjoint_splits_of_news_stories():
    splits = load_splits(cfg("sample"), seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 320, "validation": 40, "test": 40}
    ids = [e.id for split in splits.values() for e in split]
    assert len(set(ids)) == 400
    for example in splits["train"]:
        assert 80 <= len(example.article.split()) <= 230
        assert 2 <= len(example.summary.split("\n")) <= 4


def test_shipped_sample_is_exactly_what_the_generator_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLE_DIR / "make_sample.py")
    make_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_sample)
    make_sample.main(tmp_path)
    for split in ("train", "validation", "test"):
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (SAMPLE_DIR / f"{split}.jsonl").read_bytes()


def test_split_sizes_take_a_seeded_subset_of_the_sample():
    full = load_splits(cfg("sample"), seed=0)["train"]
    a = load_splits(cfg("sample", train_size="50"), seed=1)["train"]
    b = load_splits(cfg("sample", train_size="50"), seed=1)["train"]
    c = load_splits(cfg("sample", train_size="50"), seed=2)["train"]
    assert len(a) == 50 and a == b and a != c
    with pytest.raises(MinisummError, match="no test split: only train were loaded"):
        load_splits(cfg("sample"), seed=0, splits=("train",))["test"]
    positions = [full.index(e) for e in a]
    assert positions == sorted(positions)  # a subset kept in file order


# ----------------------------------------------------------------------------------------------- local files
def test_one_jsonl_file_is_split_by_ratios_with_the_seed(tmp_path):
    path = write_jsonl(tmp_path / "all.jsonl", rows(20))
    splits = load_splits(cfg(path), seed=3)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [16, 2, 2]
    ids = [e.id for s in splits.values() for e in s]
    assert sorted(ids) == sorted(f"r{i}" for i in range(20))
    assert load_splits(cfg(path), seed=3) == splits
    assert load_splits(cfg(path), seed=4)["train"] != splits["train"]
    assert splits["train"][0] == Example(splits["train"][0].id, f"Article number {splits['train'][0].id[1:]} "
                                         f"says something.", f"Summary {splits['train'][0].id[1:]}.")


def test_split_sizes_cap_local_splits(tmp_path):
    path = write_jsonl(tmp_path / "all.jsonl", rows(40))
    splits = load_splits(cfg(path, train_size="5", validation_size="all"), seed=0)
    assert len(splits["train"]) == 5 and len(splits["validation"]) == 4


def test_json_list_and_data_object_read_alike(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps(rows(5)))
    (tmp_path / "object.json").write_text(json.dumps({"data": rows(5)}))
    assert load_file(tmp_path / "list.json", DataConfig()) == load_file(tmp_path / "object.json", DataConfig())
    assert len(load_file(tmp_path / "list.json", DataConfig())) == 5


def test_csv_with_other_field_names_multiline_cells_and_row_number_ids(tmp_path):
    path = tmp_path / "news.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "summary"])
        writer.writerow(["Zoë walked to Köln.", "Zoë walked.\nShe reached Köln."])
        writer.writerow(["東京 had rain 🌧.", "Rain in 東京."])
    examples = load_file(path, DataConfig(article_field="text", summary_field="summary"))
    assert examples == [Example("0", "Zoë walked to Köln.", "Zoë walked.\nShe reached Köln."),
                        Example("1", "東京 had rain 🌧.", "Rain in 東京.")]


def test_explicit_split_files_and_an_absent_split(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", rows(6))
    validation = write_jsonl(tmp_path / "val.jsonl", rows(3, start=100))
    splits = load_splits(DataConfig(train_file=str(train), validation_file=str(validation)), seed=0)
    assert len(splits["train"]) == 6 and [e.id for e in splits["validation"]] == ["r100", "r101", "r102"]
    assert "test" not in splits
    with pytest.raises(MinisummError, match="no test split.*--test-file"):
        splits["test"]


def test_explicit_split_files_conflict_with_a_data_file(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", rows(6))
    with pytest.raises(MinisummError, match="not both"):
        load_splits(DataConfig(data=str(train), train_file=str(train)), seed=0)


def test_zero_ratio_leaves_that_split_absent_with_a_clear_error(tmp_path):
    path = write_jsonl(tmp_path / "all.jsonl", rows(10))
    splits = load_splits(cfg(path, split_ratios="0.9,0.1,0"), seed=0)
    assert len(splits["train"]) == 9 and "test" not in splits
    with pytest.raises(MinisummError, match="no test split.*--split-ratios"):
        splits["test"]


# ----------------------------------------------------------------------------------------------- CNN/DailyMail
def fake_cnn(n_train=10):
    import datasets

    def part(n, name):
        return datasets.Dataset.from_dict({"article": [f"{name} article {i}." for i in range(n)],
                                           "highlights": [f"{name} highlight {i}." for i in range(n)],
                                           "id": [f"{name}-{i}" for i in range(n)]})
    return datasets.DatasetDict({"train": part(n_train, "train"), "validation": part(4, "validation"),
                                 "test": part(3, "test")})


def test_cnn_dailymail_subsets_and_fields(monkeypatch):
    import datasets
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kw: calls.append(args) or fake_cnn())
    splits = load_splits(DataConfig(train_size="3", validation_size="all"), seed=5)
    assert calls[0] == ("abisee/cnn_dailymail", "3.0.0")
    assert len(splits["train"]) == 3 and len(splits["validation"]) == 4 and len(splits["test"]) == 3
    first = splits["train"][0]
    index = int(first.id.split("-")[1])
    assert first == Example(f"train-{index}", f"train article {index}.", f"train highlight {index}.")
    assert load_splits(DataConfig(train_size="3"), seed=5)["train"] == splits["train"]


def test_cnn_dailymail_download_failure_is_one_clear_sentence(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hugging Face Hub")
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(MinisummError) as error:
        load_splits(DataConfig(), seed=0)
    message = str(error.value)
    for part in ("CNN/DailyMail", "could not be downloaded", "--data sample", ".jsonl", "HF_HUB_OFFLINE=1"):
        assert part in message
    assert "\n" not in message


# ----------------------------------------------------------------------------------------------- bad inputs
def test_missing_file_is_named(tmp_path):
    with pytest.raises(MinisummError, match="nope.jsonl does not exist"):
        load_splits(cfg(tmp_path / "nope.jsonl"), seed=0)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(MinisummError, match="is a folder"):
        load_file(tmp_path, DataConfig())


def test_unknown_source_name_and_unknown_extension(tmp_path):
    with pytest.raises(MinisummError, match="Unknown --data 'xsum'.*cnn_dailymail.*sample"):
        load_splits(cfg("xsum"), seed=0)
    path = tmp_path / "news.txt"
    path.write_text("hello")
    with pytest.raises(MinisummError, match=r"\.txt.*\.jsonl, \.json, \.csv"):
        load_file(path, DataConfig())


@pytest.mark.parametrize("name,content", [("a.jsonl", ""), ("b.jsonl", "\n\n"), ("c.json", "[]"),
                                          ("d.csv", "article,highlights\n"), ("e.json", "  ")])
def test_empty_files(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(MinisummError, match=f"{name} is empty"):
        load_file(tmp_path / name, DataConfig())


def test_missing_field_names_field_file_and_its_fields(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"story": "s", "highlights": "h"}])
    with pytest.raises(MinisummError) as error:
        load_file(path, DataConfig())
    message = str(error.value)
    assert "'article'" in message and "x.jsonl" in message and "'story'" in message and "'highlights'" in message
    assert "--article-field" in message


def test_empty_rows_are_dropped_with_one_warning_line(tmp_path, capsys):
    items = rows(5) + [{"article": "  ", "highlights": "h"}, {"article": "a", "highlights": ""},
                       {"article": "a", "highlights": None}]
    path = write_jsonl(tmp_path / "x.jsonl", items)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        examples = load_file(path, DataConfig())
    assert len(examples) == 5
    assert not caught  # a Python UserWarning would print its source line too
    assert capsys.readouterr().err == f"warning: {path}: dropped 3 of 8 rows with an empty article or summary.\n"


def test_all_rows_empty_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"article": "", "highlights": "h"}, {"article": "a", "highlights": " "}])
    with pytest.raises(MinisummError, match="Every row"):
        load_file(path, DataConfig())


def test_undecodable_bytes_name_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"article": "a", "highlights": "h"}\n{"article": "caf\xe9", "highlights": "h"}\n')
    with pytest.raises(MinisummError, match=r"x.jsonl line 2 is not valid UTF-8"):
        load_file(path, DataConfig())
    path = tmp_path / "x.csv"
    path.write_bytes(b"article,highlights\nok,fine\ncaf\xe9,h\n")
    with pytest.raises(MinisummError, match=r"x.csv is not valid UTF-8.*line 3"):
        load_file(path, DataConfig())


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"article": "a", "highlights": "h"}\n\n{"article": "a", "highlights": }\n')
    with pytest.raises(MinisummError, match=r"x.jsonl line 3 is not valid JSON"):
        load_file(path, DataConfig())
    path.write_text('{"article": "a", "highlights": "h"}\n["a", "h"]\n')
    with pytest.raises(MinisummError, match=r"line 2 is a JSON list, not an object"):
        load_file(path, DataConfig())


def test_malformed_json_file_and_wrong_shapes(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('[{"article": "a",\n "highlights": }]')
    with pytest.raises(MinisummError, match=r"x.json is not valid JSON \(line 2"):
        load_file(path, DataConfig())
    path.write_text('{"rows": []}')
    with pytest.raises(MinisummError, match="should hold a JSON list"):
        load_file(path, DataConfig())
    path.write_text('[{"article": "a", "highlights": ["one", "two"]}]')
    with pytest.raises(MinisummError, match="'highlights' of .* is a list, not text"):
        load_file(path, DataConfig())


def test_sample_files_exist_in_the_package():
    assert all((Path(SAMPLE_DIR) / f"{s}.jsonl").is_file() for s in ("train", "validation", "test"))
