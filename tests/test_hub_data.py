"""Any summarisation dataset on the hub (`--data OWNER/NAME`), with `datasets.load_dataset` replaced by an
in-memory DatasetDict: fields, configurations, split names and slices, seeded subsets, every refusal as one
sentence, and the note when a split has fewer rows than asked for."""

import datasets
import pytest

from minisumm import data
from minisumm.config import DataConfig
from minisumm.data import Example, load_splits, source_kind
from minisumm.errors import MinisummError
from minisumm.tools import hub

XSUM = dict(data="EdinburghNLP/xsum", article_field="document", summary_field="summary")


def xsum_like(sizes={"train": 20, "validation": 5, "test": 4}):
    """A DatasetDict shaped like EdinburghNLP/xsum: document, summary, id."""
    return datasets.DatasetDict({
        split: datasets.Dataset.from_dict({"document": [f"{split} document {i}." for i in range(n)],
                                           "summary": [f"{split} summary {i}." for i in range(n)],
                                           "id": [f"{split}-{i}" for i in range(n)]})
        for split, n in sizes.items()})


@pytest.fixture
def hub_dataset(monkeypatch):
    """Serve `dataset` from a fake `load_dataset`, recording the arguments of every call; online by default."""
    calls = []

    def serve(dataset, online=True):
        monkeypatch.setattr(hub, "reachable", lambda: online)
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", datasets.config.HF_HUB_OFFLINE)  # restored after

        def load_dataset(*args, **kwargs):
            calls.append(args)
            if isinstance(dataset, Exception):
                raise dataset
            return dataset
        monkeypatch.setattr(datasets, "load_dataset", load_dataset)
        return calls
    return serve


def test_xsum_by_its_hub_name_with_its_own_field_names(hub_dataset):
    calls = hub_dataset(xsum_like())
    splits = load_splits(DataConfig(**XSUM, train_size="6", validation_size="all", test_size="all"), seed=1)
    assert calls == [("EdinburghNLP/xsum",)]  # no configuration unless --data-config names one
    assert {s: len(v) for s, v in splits.items()} == {"train": 6, "validation": 5, "test": 4}
    example = splits["validation"][2]
    assert example == Example("validation-2", "validation document 2.", "validation summary 2.")
    positions = [int(e.id.split("-")[1]) for e in splits["train"]]
    assert positions == sorted(positions) and len(set(positions)) == 6  # a subset, in the dataset's order
    again = load_splits(DataConfig(**XSUM, train_size="6"), seed=1)["train"]
    other = load_splits(DataConfig(**XSUM, train_size="6"), seed=2)["train"]
    assert again == splits["train"] and other != splits["train"]


def test_the_cnn_dailymail_shorthand_keeps_its_fields_and_takes_another_configuration(hub_dataset):
    cnn = datasets.DatasetDict({s: datasets.Dataset.from_dict({"article": ["A story."], "highlights": ["Short."],
                                                               "id": [f"{s}-0"]})
                                for s in ("train", "validation", "test")})
    calls = hub_dataset(cnn)
    # --article-field is for OWNER/NAME datasets and local files; the shorthand reads CNN/DM's own fields
    splits = load_splits(DataConfig(data="cnn_dailymail", data_config="2.0.0", article_field="document"), seed=0)
    assert calls == [("abisee/cnn_dailymail", "2.0.0")]
    assert splits["test"] == [Example("test-0", "A story.", "Short.")]
    load_splits(DataConfig(data="abisee/cnn_dailymail", data_config="3.0.0"), seed=0)
    assert calls[-1] == ("abisee/cnn_dailymail", "3.0.0")


def test_a_missing_field_names_the_fields_the_dataset_has(hub_dataset):
    hub_dataset(xsum_like())
    with pytest.raises(MinisummError) as raised:
        load_splits(DataConfig(data="EdinburghNLP/xsum"), seed=0)  # CNN/DM's field names, on XSum
    message = str(raised.value)
    assert message.startswith("EdinburghNLP/xsum has no field 'article'")
    for part in ("'document', 'summary', 'id'", "--article-field", "--article-field document --summary-field summary"):
        assert part in message
    with pytest.raises(MinisummError, match="no field 'highlights'.*--summary-field"):
        load_splits(DataConfig(data="EdinburghNLP/xsum", article_field="document"), seed=0)


def test_a_dataset_without_a_validation_split_says_so_and_how_to_make_one(hub_dataset):
    hub_dataset(xsum_like({"train": 20, "test": 4}))
    with pytest.raises(MinisummError) as raised:
        load_splits(DataConfig(**XSUM), seed=0)
    message = str(raised.value)
    assert message.startswith("EdinburghNLP/xsum has no 'validation' split (it has train, test)")
    assert "--validation-split" in message and "'train[95%:]'" in message and "\n" not in message
    # an evaluation of the test split alone does not need one
    assert len(load_splits(DataConfig(**XSUM), seed=0, splits=("test",))["test"]) == 4


def test_slices_of_one_split_hold_out_validation_rows_and_overlaps_are_refused(hub_dataset):
    hub_dataset(xsum_like({"train": 20, "test": 4}))
    config = DataConfig(**XSUM, train_split="train[:80%]", validation_split="train[80%:]", train_size="all",
                        validation_size="all")
    splits = load_splits(config, seed=0)
    assert [e.id for e in splits["train"]] == [f"train-{i}" for i in range(16)]
    assert [e.id for e in splits["validation"]] == [f"train-{i}" for i in range(16, 20)]
    config.train_split = "train"
    with pytest.raises(MinisummError, match=r"--train-split 'train' and --validation-split 'train\[80%:\]' share "
                                            r"4 rows of EdinburghNLP/xsum; give them disjoint slices"):
        load_splits(config, seed=0)
    config.train_split = "train[:5"
    with pytest.raises(MinisummError, match=r"--train-split 'train\[:5' is not a split of EdinburghNLP/xsum"):
        load_splits(config, seed=0)
    config.train_split = "train[10:5]"
    with pytest.raises(MinisummError, match=r"selects no rows"):
        load_splits(config, seed=0)


def test_offline_without_the_dataset_in_the_cache_is_one_sentence(hub_dataset):
    calls = hub_dataset(ConnectionError("Couldn't reach 'EdinburghNLP/xsum' on the Hub (OfflineModeIsEnabled)"),
                        online=False)
    with pytest.raises(MinisummError) as raised:
        load_splits(DataConfig(**XSUM), seed=0)
    message = str(raised.value)
    assert message.startswith("The dataset EdinburghNLP/xsum could not be downloaded (Couldn't reach")
    for part in ("--data sample", "(--data FILE)", "HF_HUB_OFFLINE=1"):
        assert part in message
    assert "\n" not in message and len(calls) == 1
    assert datasets.config.HF_HUB_OFFLINE  # offline: the cache only, no retries


def test_an_unknown_dataset_and_a_missing_configuration_are_named(hub_dataset):
    hub_dataset(datasets.exceptions.DatasetNotFoundError("Dataset 'EdinburghNLP/xsumm' doesn't exist on the Hub"))
    with pytest.raises(MinisummError, match=r"^There is no dataset EdinburghNLP/xsumm on the Hugging Face hub.*"
                                            r"check the name"):
        load_splits(DataConfig(data="EdinburghNLP/xsumm"), seed=0)
    hub_dataset(ValueError("Config name is missing.\nPlease pick one among the available configs: "
                           "['1.0.0', '2.0.0', '3.0.0']\nExample of usage:\n\t`load_dataset(...)`"))
    with pytest.raises(MinisummError) as raised:
        load_splits(DataConfig(data="abisee/cnn_dailymail"), seed=0)
    assert str(raised.value) == ("abisee/cnn_dailymail has several configurations; choose one with --data-config "
                                 "('1.0.0', '2.0.0', '3.0.0').")
    hub_dataset(ValueError("BuilderConfig '4.0.0' not found. Available: ['1.0.0', '2.0.0', '3.0.0']"))
    with pytest.raises(MinisummError) as raised:
        load_splits(DataConfig(data="cnn_dailymail", data_config="4.0.0"), seed=0)
    assert str(raised.value) == ("abisee/cnn_dailymail has no configuration '4.0.0'; choose one with --data-config "
                                 "('1.0.0', '2.0.0', '3.0.0').")


def test_what_data_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "train").write_text("")
    kinds = {name: source_kind(DataConfig(data=name)) for name in
             ("EdinburghNLP/xsum", "abisee/cnn_dailymail", "cnn_dailymail", "sample", "xsum", "news/train",
              "news/all.jsonl", "./owner/name", "a/b/c")}
    assert kinds == {"EdinburghNLP/xsum": "hub", "abisee/cnn_dailymail": "hub", "cnn_dailymail": "cnn_dailymail",
                     "sample": "sample", "xsum": "file", "news/train": "file", "news/all.jsonl": "file",
                     "./owner/name": "file", "a/b/c": "file"}
    with pytest.raises(MinisummError, match=r"Unknown --data 'xsum'.*OWNER/NAME \(e\.g\. EdinburghNLP/xsum\)"):
        load_splits(DataConfig(data="xsum"), seed=0)


def test_the_cache_key_changes_with_the_hub_dataset_configuration_and_splits():
    keys = {data.describe_source(DataConfig(**XSUM, **change), seed=0) for change in
            ({}, {"data_config": "x"}, {"train_split": "train[:90%]"}, {"test_split": "validation"})}
    assert len(keys) == 4


# ----------------------------------------------------------------------------------------------- notes
def write_rows(path, n):
    path.write_text("".join(f'{{"article": "Story {i}.", "highlights": "Short {i}."}}\n' for i in range(n)))
    return path


def test_a_size_larger_than_the_data_is_one_note_saying_what_was_used(tmp_path, monkeypatch, capsys):
    path = write_rows(tmp_path / "data.jsonl", 20)
    splits = load_splits(DataConfig(data=str(path), train_size="21000", validation_size="2", test_size="2"), seed=0)
    assert len(splits["train"]) == 16
    assert capsys.readouterr().err == ("note: --train-size 21000 asks for more than the 16 train rows of data.jsonl; "
                                       "using all 16.\n")
    load_splits(DataConfig(data=str(path)), seed=0)  # the default sizes
    assert capsys.readouterr().err == ("note: --train-size 21000, --validation-size 6000 and --test-size 3000 ask "
                                       "for more than the 16 train, 2 validation and 2 test rows of data.jsonl; "
                                       "using all of them.\n")


def test_no_note_when_the_sizes_fit_for_an_evaluation_or_on_other_processes(tmp_path, monkeypatch, capsys):
    path = write_rows(tmp_path / "data.jsonl", 20)
    load_splits(DataConfig(data=str(path), train_size="16", validation_size="all", test_size="1"), seed=0)
    load_splits(DataConfig(data=str(path)), seed=0, splits=("test",))  # evaluate.py scores one split
    monkeypatch.setenv("RANK", "1")
    load_splits(DataConfig(data=str(path)), seed=0)
    assert capsys.readouterr().err == ""


def test_the_note_for_the_sample_and_a_hub_dataset(hub_dataset, capsys):
    load_splits(DataConfig(data="sample", train_size="400", validation_size="10", test_size="10"), seed=0)
    assert capsys.readouterr().err == ("note: --train-size 400 asks for more than the 320 train rows of the sample; "
                                       "using all 320.\n")
    hub_dataset(xsum_like())
    splits = load_splits(DataConfig(**XSUM, train_size="50", validation_size="5", test_size="3"), seed=0)
    assert len(splits["train"]) == 20
    assert capsys.readouterr().err == ("note: --train-size 50 asks for more than the 20 train rows of "
                                       "EdinburghNLP/xsum; using all 20.\n")


# ----------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_train_py_on_a_hub_dataset_then_the_same_run_again_from_its_config(hub_dataset, tmp_path, capsys):
    import json

    from minisumm.cli.train import main as train_main
    from minisumm.errors import run_cli

    hub_dataset(xsum_like({"train": 30, "test": 4}))
    flags = ["--model", "tiny-random", "--method", "lora", "--max-length", "96", "--max-summary-tokens", "16",
             "--batch-size", "4", "--grad-accum", "1", "--max-steps", "1", "--no-progress",
             "--cache-dir", str(tmp_path / "cache")]
    xsum = ["--data", "EdinburghNLP/xsum", "--article-field", "document", "--summary-field", "summary",
            "--train-split", "train[:80%]", "--validation-split", "train[80%:]", "--validation-size", "all"]
    assert run_cli(train_main, [*flags, *xsum, "--out", str(tmp_path / "first")]) == 0
    assert "note: --train-size 21000 asks for more than the 24 train rows of EdinburghNLP/xsum; using all 24." in (
        capsys.readouterr().err.splitlines())
    stored = json.loads((tmp_path / "first" / "config.json").read_text())["config"]["data"]
    assert (stored["data"], stored["train_split"], stored["validation_split"]) == (
        "EdinburghNLP/xsum", "train[:80%]", "train[80%:]")
    assert run_cli(train_main, ["--config", str(tmp_path / "first"), "--lora-rank", "2",
                                "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "config.json").read_text())["config"]
    assert again["data"] == stored and again["method"]["lora_rank"] == 2


def test_evaluate_s_baseline_reads_a_hub_dataset_with_its_own_fields(hub_dataset, tmp_path, capsys):
    import json

    from minisumm.cli.evaluate import main as evaluate_main
    from minisumm.errors import run_cli

    calls = hub_dataset(xsum_like())
    out = tmp_path / "lead3"
    argv = ["--baseline", "lead3", "--data", "EdinburghNLP/xsum", "--out", str(out)]
    assert run_cli(evaluate_main, argv) == 2  # CNN/DM's field names by default: one sentence naming the fields
    assert "document" in capsys.readouterr().err
    assert run_cli(evaluate_main, [*argv, "--article-field", "document", "--summary-field", "summary",
                                   "--split", "validation", "--validation-split", "test"]) == 0
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert [p["prediction"] for p in predictions] == [f"test document {i}." for i in range(4)]
    assert calls[-1] == ("EdinburghNLP/xsum",)
