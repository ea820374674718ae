"""Summarisation examples (article, summary) from CNN/DailyMail, the shipped sample, or local files.

`load_splits(data_cfg, seed)` returns `{"train": [...], "validation": [...], "test": [...]}` of `Example`s
from the source `DataConfig.data` names:
- `cnn_dailymail`: the CNN/DailyMail corpus (Hermann et al. 2015; See et al. 2017's non-anonymised
  version 3.0.0, `abisee/cnn_dailymail` on the Hugging Face hub), with seeded random subsets of
  `DataConfig.split_sizes()` per split, as full training runs on all 287k articles take days on one GPU.
- `sample`: about 400 invented news stories shipped in `minisumm/sample_data/` (see `make_sample.py`
  there), for offline runs and demos.
- a local `.jsonl`, `.json` or `.csv` file, split into train / validation / test by `--split-ratios`
  with the seed; or `--train-file` / `--validation-file` / `--test-file` naming each split's file.
CNN/DailyMail and the sample always use the fields `article`, `highlights` and `id`; local files use
`--article-field`, `--summary-field` and `--id-field` (the row number when a row has no id).
The split sizes cap every source (a seeded subset, kept in file order). Rows whose article or summary is
empty are dropped, with one warning per file saying how many.

A split that is asked for but cannot exist (no `--test-file`, a zero share in `--split-ratios`) is left
out of the returned dict, and looking it up raises a `MinisummError` that says how to provide it.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path

from minisumm.config import DataConfig
from minisumm.tools.data_files import SUPPORTED, check_file, read_rows
from minisumm.errors import MinisummError, first_line

SPLITS = ("train", "validation", "test")
CNN_DAILYMAIL = ("abisee/cnn_dailymail", "3.0.0")
CNN_FIELDS = ("article", "highlights", "id")
SAMPLE_DIR = Path(__file__).parent / "sample_data"
SAMPLE_FIELDS = ("article", "highlights", "id")


@dataclass(frozen=True)
class Example:
    id: str
    article: str
    summary: str  # sentences joined by "\n", as CNN/DM's highlights


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
    split_files = {s: getattr(data_cfg, f"{s}_file") for s in SPLITS}
    if any(split_files.values()):
        if data_cfg.data not in ("cnn_dailymail", ""):
            raise MinisummError(f"Give either --data {data_cfg.data} or --train-file/--validation-file/"
                                f"--test-file, not both.")
        loaded = {s: load_file(split_files[s], data_cfg) for s in splits if split_files[s]}
        hint = "pass --{split}-file FILE with its examples"
    elif data_cfg.data == "cnn_dailymail":
        loaded = _load_cnn_dailymail(splits, sizes, seed)
        hint = f"only {', '.join(splits)} were loaded"
    elif data_cfg.data == "sample":
        loaded = {s: _examples(read_rows(SAMPLE_DIR / f"{s}.jsonl"), f"sample {s} split", SAMPLE_FIELDS)
                  for s in splits}
        hint = f"only {', '.join(splits)} were loaded"
    else:
        path = _local_path(data_cfg.data)
        loaded = _split_by_ratios(load_file(path, data_cfg), data_cfg.ratios(), seed)
        loaded = {s: loaded[s] for s in splits if loaded[s]}
        hint = (f"its share of --split-ratios {data_cfg.split_ratios} leaves no rows of {path}; "
                f"give other ratios or more rows")
    capped = {s: _subset(examples, sizes[s], seed, s) for s, examples in loaded.items()}
    return Splits(capped, hint)


def load_file(path: str | Path, data_cfg: DataConfig) -> list[Example]:
    """Every usable row of one local .jsonl/.json/.csv file, fields named by `data_cfg`."""
    fields = (data_cfg.article_field, data_cfg.summary_field, data_cfg.id_field)
    return _examples(read_rows(path), str(Path(path).expanduser()), fields)


def describe_source(data_cfg: DataConfig, seed: int) -> str:
    """A text that changes whenever the data source does (file path, size, modification time; dataset
    name, split sizes and seed): part of the tokenised cache's key."""
    files = [data_cfg.train_file, data_cfg.validation_file, data_cfg.test_file]
    if data_cfg.data == "sample":
        files = [SAMPLE_DIR / f"{s}.jsonl" for s in SPLITS]
    elif data_cfg.data != "cnn_dailymail" and not any(files):
        files = [data_cfg.data]
    parts = [f"data={data_cfg.data}", f"sizes={data_cfg.split_sizes()}", f"seed={seed}",
             f"ratios={data_cfg.split_ratios}",
             f"fields={data_cfg.article_field},{data_cfg.summary_field},{data_cfg.id_field}"]
    for file in files:
        if file:
            path = Path(file).expanduser().resolve()
            stat = path.stat() if path.is_file() else None
            parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{path}:missing")
    return "|".join(parts)


def _load_cnn_dailymail(splits, sizes, seed) -> dict[str, list[Example]]:
    import datasets  # imported here: it takes a second and only this source needs it

    from minisumm.tools import hub

    name, config = CNN_DAILYMAIL
    if not hub.reachable():
        # No network: read the local cache only, as HF_HUB_OFFLINE=1 would, instead of ~25 s of retries.
        import huggingface_hub.constants

        datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        dataset = datasets.load_dataset(name, config)
    except Exception as error:  # hub failures arrive as OSError, ConnectionError, HTTP errors, ...
        raise MinisummError(
            f"The CNN/DailyMail dataset ({name} {config}) could not be downloaded ({first_line(error)}); "
            f"offline, use --data sample, a local .jsonl/.json/.csv file (--data FILE), or HF_HUB_OFFLINE=1 "
            f"with a Hugging Face cache that already holds the dataset.") from None
    loaded = {}
    for split in splits:
        part = dataset[split]
        # Draw the subset before reading rows: reading all 287k articles into Python takes a while.
        # Empty rows are dropped after drawing, so a split can come out a few examples short.
        chosen = _subset(list(range(len(part))), sizes[split], seed, split)
        rows = [(f"row {index}", row) for index, row in zip(chosen, part.select(chosen))]
        loaded[split] = _examples(rows, f"{name} {split} split", CNN_FIELDS)
    return loaded


def _local_path(data: str) -> Path:
    path = Path(data).expanduser()
    looks_like_file = path.suffix.lower() in SUPPORTED or "/" in data or "\\" in data
    if not path.exists() and not looks_like_file:
        raise MinisummError(f"Unknown --data {data!r}: use 'cnn_dailymail', 'sample', or the path of a "
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
        examples.append(Example(str(index) if ident in (None, "") else str(ident), article, summary))
    if not examples:
        raise MinisummError(f"Every row of {source} has an empty {article_field!r} or {summary_field!r}; "
                            f"there is nothing to train or evaluate on.")
    if dropped:
        warnings.warn(f"{source}: dropped {dropped} of {len(rows)} rows with an empty article or summary.",
                      stacklevel=3)
    return examples


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
