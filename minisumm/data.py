"""Summarisation examples (article, summary) from the Hugging Face hub, the shipped sample, or local files.

`load_splits(data_cfg, seed)` returns `{"train": [...], "validation": [...], "test": [...]}` of `Example`s
from the source `DataConfig.data` names:
- `OWNER/NAME`: any summarisation dataset on the Hugging Face hub, read with `datasets.load_dataset(NAME,
  --data-config)` and kept in its cache. `--train-split`, `--validation-split` and `--test-split` name the
  splits (a slice such as `train[:95%]` takes part of one); `--article-field`, `--summary-field` and
  `--id-field` the fields. Two examples:

      dataset               --data-config   splits                    article    summary      id
      abisee/cnn_dailymail  3.0.0           train, validation, test   article    highlights   id
      EdinburghNLP/xsum     (none)          train, validation, test   document   summary      id

- `cnn_dailymail`: shorthand for `abisee/cnn_dailymail` 3.0.0 (Hermann et al. 2015; See et al. 2017's
  non-anonymised version), always with its own fields `article`, `highlights` and `id`.
- `sample`: about 400 invented news stories shipped in `minisumm/sample_data/` (see `make_sample.py`
  there), for offline runs and demos; fields `article`, `highlights` and `id`.
- a local `.jsonl`, `.json` or `.csv` file, split into train / validation / test by `--split-ratios`
  with the seed; or `--train-file` / `--validation-file` / `--test-file` naming each split's file. Fields
  as for hub datasets (the row number when a row has no id).
The split sizes cap every source with a seeded random subset, kept in the source's order; for the hub the
subset is drawn before any row is read, as full training runs on all 287k CNN/DM articles take days on one
GPU. A split with fewer rows than its size is used whole: when the train split is loaded (a training run),
one `note:` line on stderr says so. Rows whose article or summary is empty are dropped, with one warning per
split saying how many.

Without a network (`minisumm.tools.hub.reachable()`), hub datasets are read from the local cache only, and a
dataset that is not there is one sentence naming what to use instead.

A split that is asked for but cannot exist (no `--test-file`, a zero share in `--split-ratios`) is left
out of the returned dict, and looking it up raises a `MinisummError` that says how to provide it.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from minisumm.config import DataConfig
from minisumm.tools.data_files import SUPPORTED, check_file, read_rows
from minisumm.errors import MinisummError, first_line

SPLITS = ("train", "validation", "test")
CNN_DAILYMAIL = ("abisee/cnn_dailymail", "3.0.0")
CNN_FIELDS = ("article", "highlights", "id")
SAMPLE_DIR = Path(__file__).parent / "sample_data"
SAMPLE_FIELDS = ("article", "highlights", "id")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # OWNER/NAME, as on huggingface.co/datasets
HOLD_OUT = "--train-split 'train[:95%]' --validation-split 'train[95%:]'"


@dataclass(frozen=True)
class Example:
    id: str
    article: str
    summary: str  # sentences joined by "\n", as CNN/DM's highlights
    facts: dict | None = field(default=None, compare=False, repr=False)  # a generated story's ground truth


FACT_KEYS = ("highlights", "article", "distractors")  # minisumm.tiny_news.synthetic_news.Story.facts


class Splits(dict):
    """A dict of splits whose missing keys raise a MinisummError saying how to provide that split."""

    def __init__(self, splits: dict, hint: str):
        super().__init__(splits)
        self.hint = hint

    def __missing__(self, split: str):
        raise MinisummError(f"There is no {split} split: {self.hint.format(split=split)}.")


def load_splits(data_cfg: DataConfig, seed: int, splits: tuple[str, ...] = SPLITS) -> dict[str, list[Example]]:
    """The examples of each requested split, each capped (seeded subset) at `data_cfg.split_sizes()`."""
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown splits {unknown}; choose from {SPLITS}")
    sizes = data_cfg.split_sizes()
    kind = source_kind(data_cfg)
    if kind == "files":
        if data_cfg.data not in ("cnn_dailymail", ""):
            raise MinisummError(f"Give either --data {data_cfg.data} or --train-file/--validation-file/"
                                f"--test-file, not both.")
        files = {s: getattr(data_cfg, f"{s}_file") for s in splits if getattr(data_cfg, f"{s}_file")}
        _check_distinct_files(data_cfg)
        loaded = {s: load_file(file, data_cfg) for s, file in files.items()}
        where = {s: Path(file).name for s, file in files.items()}
        hint = "pass --{split}-file FILE with its examples"
    elif kind in ("hub", "cnn_dailymail"):
        capped, available = _load_hub(data_cfg, splits, sizes, seed)
        _note_capped(sizes, available, dict.fromkeys(splits, _hub_name(data_cfg)[0]))
        return Splits(capped, f"only {', '.join(splits)} were loaded")
    elif kind == "sample":
        loaded = {s: _examples(read_rows(SAMPLE_DIR / f"{s}.jsonl"), f"sample {s} split", SAMPLE_FIELDS)
                  for s in splits}
        where = dict.fromkeys(splits, "the sample")
        hint = f"only {', '.join(splits)} were loaded"
    else:
        path = _local_path(data_cfg.data)
        loaded = _split_by_ratios(load_file(path, data_cfg), data_cfg.ratios(), seed)
        loaded = {s: loaded[s] for s in splits if loaded[s]}
        where = dict.fromkeys(splits, path.name)
        hint = (f"its share of --split-ratios {data_cfg.split_ratios} leaves no rows of {path}; "
                f"give other ratios or more rows")
    _note_capped(sizes, {s: len(examples) for s, examples in loaded.items()}, where)
    capped = {s: _subset(examples, sizes[s], seed, s) for s, examples in loaded.items()}
    return Splits(capped, hint)


def source_kind(data_cfg: DataConfig) -> str:
    """Where the examples come from: "files" (--train-file ...), "cnn_dailymail", "sample", "hub" (an
    OWNER/NAME that is no local path) or "file" (one local file, or an unknown name to be refused)."""
    if any(getattr(data_cfg, f"{s}_file") for s in SPLITS):
        return "files"
    if data_cfg.data in ("cnn_dailymail", "sample"):
        return data_cfg.data
    path = Path(data_cfg.data).expanduser()
    if path.exists() or path.suffix.lower() in SUPPORTED or not HUB_ID.fullmatch(data_cfg.data):
        return "file"
    return "hub"


def load_file(path: str | Path, data_cfg: DataConfig) -> list[Example]:
    """Every usable row of one local .jsonl/.json/.csv file, fields named by `data_cfg`."""
    fields = (data_cfg.article_field, data_cfg.summary_field, data_cfg.id_field)
    return _examples(read_rows(path), str(Path(path).expanduser()), fields)


def describe_source(data_cfg: DataConfig, seed: int) -> str:
    """A text that changes whenever the data source does (file path, size, modification time; dataset
    name, split sizes and seed): part of the tokenised cache's key."""
    files = [data_cfg.train_file, data_cfg.validation_file, data_cfg.test_file]
    kind = source_kind(data_cfg)
    if kind == "sample":
        files = [SAMPLE_DIR / f"{s}.jsonl" for s in SPLITS]
    elif kind == "file":
        files = [data_cfg.data]
    parts = [f"data={data_cfg.data}", f"sizes={data_cfg.split_sizes()}", f"seed={seed}",
             f"ratios={data_cfg.split_ratios}",
             f"fields={data_cfg.article_field},{data_cfg.summary_field},{data_cfg.id_field}"]
    if kind in ("hub", "cnn_dailymail"):
        parts.append("hub={},{},{},{},{}".format(*_hub_name(data_cfg), *(getattr(data_cfg, f"{s}_split")
                                                                         for s in SPLITS)))
    for file in files:
        if file:
            path = Path(file).expanduser().resolve()
            stat = path.stat() if path.is_file() else None
            parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{path}:missing")
    return "|".join(parts)


def _hub_name(data_cfg: DataConfig) -> tuple[str, str | None]:
    """The hub dataset and configuration to load: `cnn_dailymail` is abisee/cnn_dailymail 3.0.0."""
    if data_cfg.data == "cnn_dailymail":
        return CNN_DAILYMAIL[0], data_cfg.data_config or CNN_DAILYMAIL[1]
    return data_cfg.data, data_cfg.data_config


def _load_hub(data_cfg: DataConfig, splits, sizes, seed) -> tuple[dict[str, list[Example]], dict[str, int]]:
    """The seeded subset of each split of a hub dataset, and how many rows each split had to draw from."""
    import datasets  # imported here: it takes a second and only the hub needs it

    from minisumm.tools import hub

    name, config = _hub_name(data_cfg)
    fields = CNN_FIELDS if data_cfg.data == "cnn_dailymail" else (
        data_cfg.article_field, data_cfg.summary_field, data_cfg.id_field)
    online = hub.reachable()
    if not online:
        # No network: read the local cache only, as HF_HUB_OFFLINE=1 would, instead of ~25 s of retries.
        import huggingface_hub.constants

        datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        dataset = datasets.load_dataset(name, config) if config else datasets.load_dataset(name)
    except Exception as error:  # hub failures arrive as OSError, ConnectionError, HTTP errors, ValueError, ...
        raise MinisummError(_hub_error(data_cfg, name, config, error, online)) from None
    rows = {split: _split_rows(dataset, name, split, getattr(data_cfg, f"{split}_split")) for split in splits}
    _check_disjoint(rows, name, data_cfg)
    flags = ("--article-field", "--summary-field")
    for part in {part for chosen in rows.values() for part, _ in chosen}:
        for field, flag in zip(fields, flags):
            if field not in dataset[part].column_names:
                names = ", ".join(repr(column) for column in dataset[part].column_names)
                raise MinisummError(f"{name} has no field {field!r} (its {part} split has {names}); name the "
                                    f"right one with {flag} (XSum: --article-field document --summary-field "
                                    f"summary).")
    loaded = {}
    for split, chosen in rows.items():
        # Draw the subset before reading rows: reading all 287k CNN/DM articles into Python takes a while.
        # Empty rows are dropped after drawing, so a split can come out a few examples short.
        items = []
        for part, group in itertools.groupby(_subset(chosen, sizes[split], seed, split), key=lambda row: row[0]):
            indices = [index for _, index in group]
            items += [(f"{part} row {index}", row) for index, row in zip(indices, dataset[part].select(indices))]
        loaded[split] = _examples(items, f"{name} {split} split", fields)
    return loaded, {split: len(chosen) for split, chosen in rows.items()}


def _split_rows(dataset, name: str, split: str, spec: str) -> list[tuple[str, int]]:
    """The (split name, row index) pairs that `--{split}-split` selects: a split, a slice or a sum of them,
    in datasets' syntax ("train", "train[:95%]", "train[:1000]+validation")."""
    from datasets import ReadInstruction

    flag, have = f"--{split}-split", ", ".join(dataset)
    try:
        instructions = ReadInstruction.from_spec(spec).to_absolute({part: len(dataset[part]) for part in dataset})
    except ValueError as error:
        if "Unknown split" not in str(error):
            raise MinisummError(f"{flag} {spec!r} is not a split of {name}: give one of its splits ({have}) or a "
                                f"slice such as 'train[95%:]'.") from None
        missing = re.search(r'Unknown split "([^"]*)"', str(error))
        missing = missing.group(1) if missing else spec
        extra = f", or hold out part of train: {HOLD_OUT}" if split == "validation" else ""
        raise MinisummError(f"{name} has no {missing!r} split (it has {have}); name the split to use with "
                            f"{flag}{extra}.") from None
    chosen = [(i.splitname, index) for i in instructions for index in range(i.from_, i.to)]
    if not chosen:
        raise MinisummError(f"{flag} {spec!r} selects no rows of {name}; give a split or a slice that holds some.")
    return chosen


def _check_distinct_files(data_cfg: DataConfig) -> None:
    """Refuse one file given for two splits, as `_check_disjoint` refuses hub splits that share rows."""
    named = [(split, Path(getattr(data_cfg, f"{split}_file")).expanduser()) for split in SPLITS
             if getattr(data_cfg, f"{split}_file")]
    for (first, one), (second, other) in itertools.combinations(named, 2):
        if one.exists() and other.exists() and os.path.samefile(one, other):
            raise MinisummError(f"--{first}-file and --{second}-file name the same file ({other}): validating or "
                                f"testing on training rows measures memory, not skill; give each split its own "
                                f"file, or one file with --data FILE and --split-ratios.")


def _check_disjoint(rows: dict[str, list[tuple[str, int]]], name: str, data_cfg: DataConfig) -> None:
    """Refuse splits that share rows: validating or testing on training rows measures memory, not skill."""
    for first, second in itertools.combinations(rows, 2):
        if not {part for part, _ in rows[first]} & {part for part, _ in rows[second]}:
            continue  # no split in common: nothing to compare row by row
        shared = len(set(rows[first]) & set(rows[second]))
        if shared:
            raise MinisummError(
                f"--{first}-split {getattr(data_cfg, f'{first}_split')!r} and --{second}-split "
                f"{getattr(data_cfg, f'{second}_split')!r} share {shared:,} rows of {name}; give them disjoint "
                f"slices, e.g. {HOLD_OUT}.")


def _hub_error(data_cfg: DataConfig, name: str, config: str | None, error: Exception, online: bool) -> str:
    """One sentence for a dataset that `load_dataset` could not load: which, why, and what to use instead."""
    from datasets.exceptions import DatasetNotFoundError

    text = str(error)
    if "Config name is missing" in text or "BuilderConfig" in text:
        listed = re.search(r"\[(.*?)\]", text)
        choices = f" ({listed.group(1)})" if listed else ""
        wrong = f"has no configuration {config!r}" if config else "has several configurations"
        return f"{name} {wrong}; choose one with --data-config{choices}."
    if online and isinstance(error, DatasetNotFoundError):
        return (f"There is no dataset {name} on the Hugging Face hub, or it is gated or private "
                f"({first_line(error)}); check the name (OWNER/NAME as on huggingface.co/datasets), log in "
                f"with `hf auth login` for a gated one, or give the path of a local .jsonl/.json/.csv file.")
    what = (f"The CNN/DailyMail dataset ({name} {config})" if data_cfg.data == "cnn_dailymail"
            else f"The dataset {name}" + (f" {config}" if config else ""))
    verb = "loaded" if online else "downloaded"
    return (f"{what} could not be {verb} ({first_line(error)}); offline, use --data sample, a local "
            f".jsonl/.json/.csv file (--data FILE), or HF_HUB_OFFLINE=1 with a Hugging Face cache that already "
            f"holds the dataset.")


def _note_capped(sizes: dict[str, int | None], available: dict[str, int], where: dict[str, str]) -> None:
    """One `note:` line when a training run asks some split for more rows than it has (all of them are used).
    Only when the train split is loaded: an evaluation of one split stays quiet, as its run said it."""
    capped = [s for s, n in available.items() if sizes[s] is not None and sizes[s] > n]
    if not capped or "train" not in available or int(os.environ.get("RANK", "0")) != 0:
        return
    flags = [f"--{s}-size {sizes[s]}" for s in capped]
    sources = " and ".join(dict.fromkeys(where[s] for s in capped))
    if len(capped) == 1:
        split = capped[0]
        text = (f"{flags[0]} asks for more than the {available[split]:,} {split} rows of {sources}; "
                f"using all {available[split]:,}.")
    else:
        text = (f"{_words(flags)} ask for more than the {_words([f'{available[s]:,} {s}' for s in capped])} "
                f"rows of {sources}; using all of them.")
    print(f"note: {text}", file=sys.stderr)


def _words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _local_path(data: str) -> Path:
    path = Path(data).expanduser()
    looks_like_file = path.suffix.lower() in SUPPORTED or "/" in data or "\\" in data
    if not path.exists() and not looks_like_file:
        raise MinisummError(f"Unknown --data {data!r}: use 'cnn_dailymail', 'sample', a Hugging Face hub "
                            f"dataset as OWNER/NAME (e.g. EdinburghNLP/xsum), or the path of a "
                            f"{', '.join(SUPPORTED)} file.")
    return check_file(path)


def _examples(rows: list[tuple[str, dict]], source: str, fields: tuple[str, str, str]) -> list[Example]:
    """Rows → Examples: check the fields exist, drop rows with empty text (one warning), default ids."""
    article_field, summary_field, id_field = fields
    examples, dropped = [], 0
    for index, (where, row) in enumerate(rows):
        article = _text(row, article_field, "--article-field", where, source)
        summary = _text(row, summary_field, "--summary-field", where, source)
        if not article or not summary:
            dropped += 1
            continue
        ident = row.get(id_field)
        examples.append(Example(str(index) if ident in (None, "") else str(ident), article, summary,
                                _facts(row, where, source)))
    if not examples:
        raise MinisummError(f"Every row of {source} has an empty {article_field!r} or {summary_field!r}; "
                            f"there is nothing to train or evaluate on.")
    if dropped:
        print(f"warning: {source}: dropped {dropped} of {len(rows)} rows with an empty article or summary.",
              file=sys.stderr)
    return examples


def _facts(row: dict, where: str, source: str) -> dict | None:
    """A generated story's `facts` (lists of strings under FACT_KEYS, one list per highlight), or None."""
    facts = row.get("facts")
    if facts is None:
        return None
    lists = [facts.get(key) for key in FACT_KEYS] if isinstance(facts, dict) else []
    nested = lists[0] if lists else None
    if not (len(lists) == 3 and all(isinstance(x, list) for x in lists) and set(facts) == set(FACT_KEYS)
            and all(isinstance(h, list) and all(isinstance(f, str) for f in h) for h in nested)
            and all(isinstance(f, str) for x in lists[1:] for f in x)):
        raise MinisummError(f"Field 'facts' of {source} {where} is not a generated story's facts (an object with "
                            f"lists of strings 'highlights' (one list per highlight), 'article' and "
                            f"'distractors'); remove the field or write it as minisumm.tiny_news does.")
    return facts


def _text(row: dict, field: str, flag: str, where: str, source: str) -> str:
    if field not in row:
        fields = ", ".join(repr(str(name)) for name in row) or "none"
        raise MinisummError(f"{source} has no field {field!r} ({where} has fields {fields}); name the right "
                            f"one with {flag}.")
    value = row[field]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MinisummError(f"Field {field!r} of {source} {where} is a {type(value).__name__}, not text; "
                            f"the article and summary fields must hold strings.")
    return value.strip()


def _split_by_ratios(examples: list[Example], ratios: tuple[float, float, float], seed: int
                     ) -> dict[str, list[Example]]:
    """Shuffle with the seed, then cut into train / validation / test by the ratios."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = round(ratios[0] * len(order))
    n_validation = min(round(ratios[1] * len(order)), len(order) - n_train)
    cuts = {"train": order[:n_train], "validation": order[n_train:n_train + n_validation],
            "test": order[n_train + n_validation:] if ratios[2] > 0 else []}
    return {split: [examples[i] for i in sorted(indices)] for split, indices in cuts.items()}


def _subset(items: list, size: int | None, seed: int, split: str) -> list:
    """A seeded random subset of `size` items in their original order, or all of them."""
    if size is None or size >= len(items):
        return items
    chosen = sorted(random.Random(f"{seed}-{split}").sample(range(len(items)), size))
    return [items[i] for i in chosen]
