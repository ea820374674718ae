"""Read the rows of a local .jsonl, .json or .csv file, turning every bad input into one clear sentence.

`read_rows(path)` returns `(where, row)` pairs: `row` is the file's dict for one example and `where` says
where it sits ("line 7", "item 3") so that later messages (a missing field) can point at it. Formats:
- `.jsonl`: one JSON object a line; blank lines are skipped.
- `.json`: a list of objects, or an object whose `"data"` key holds that list.
- `.csv`: a header row naming the fields, then one row per example with one cell per column (quoted cells
  may span lines). A row with more or fewer cells than the header, or a quote that is never closed, is
  refused with its line number: such a row is a comma in an unquoted cell or a lost quote, and guessing
  would merge rows or cut articles into the summary.
All files are read as UTF-8 (a byte-order mark is allowed); JSON is strict (`minisumm.tools.json_files`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from minisumm.errors import MinisummError
from minisumm.tools import json_files

SUPPORTED = (".jsonl", ".json", ".csv")
# csv refuses cells over 131,072 characters by default; one long article can be longer than that.
CSV_FIELD_LIMIT = 1 << 30
HEADER_NAME_LIMIT = 64  # longer first-row cells are text, not column names


def check_file(path: str | Path) -> Path:
    """The path as a Path, if it is an existing file with a supported extension."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise MinisummError(f"{path} is a folder, not a data file; give the path of a .jsonl, .json or .csv file.")
    if not path.exists():
        raise MinisummError(f"Data file {path} does not exist; check the path (relative paths start from "
                            f"the current directory).")
    if path.suffix.lower() not in SUPPORTED:
        raise MinisummError(f"Data file {path} has the unsupported extension {path.suffix or '(none)'!r}; "
                            f"minisumm reads {', '.join(SUPPORTED)} files.")
    return path


def read_rows(path: str | Path) -> list[tuple[str, dict]]:
    """Every row of a data file with where it sits in the file, e.g. `("line 7", {"article": ...})`."""
    path = check_file(path)
    if path.stat().st_size == 0:
        raise MinisummError(f"Data file {path} is empty; it needs one example per row.")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = _jsonl_rows(path)
    else:
        text = _decode(path)
        rows = _json_rows(path, text) if suffix == ".json" else _csv_rows(path, text)
    if not rows:
        raise MinisummError(f"Data file {path} is empty (it holds no rows); it needs one example per row.")
    return rows


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise MinisummError(f"Data file {path} is not valid UTF-8 (undecodable bytes on line {line}); "
                            f"re-save it with UTF-8 encoding.") from None


def _jsonl_rows(path: Path) -> list[tuple[str, dict]]:
    rows = []
    with path.open("rb") as lines:  # line by line: a large file never has to fit in memory twice
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise MinisummError(f"Data file {path} line {number} is not valid UTF-8 (undecodable bytes); "
                                    f"re-save the file with UTF-8 encoding.") from None
            if not line.strip():
                continue
            try:
                row = json_files.parse(line)
            except json_files.JSONProblem as error:
                why = str(error).split(": ", 1)[-1] if str(error).startswith("line ") else error
                raise MinisummError(f"Data file {path} line {number} is not valid JSON ({why}); each "
                                    f"line of a .jsonl file must be one JSON object.") from None
            if not isinstance(row, dict):
                raise MinisummError(f"Data file {path} line {number} is a JSON {type(row).__name__}, not an "
                                    f"object; each line of a .jsonl file must be one object like "
                                    f'{{"article": ..., "highlights": ...}}.')
            rows.append((f"line {number}", row))
    return rows


def _json_rows(path: Path, text: str) -> list[tuple[str, dict]]:
    if not text.strip():
        return []
    try:
        data = json_files.parse(text)
    except json_files.JSONProblem as error:
        raise MinisummError(f"Data file {path} is not valid JSON ({error}); fix it or convert it to "
                            f".jsonl.") from None
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    if not isinstance(data, list):
        raise MinisummError(f"Data file {path} should hold a JSON list of objects, or an object with a "
                            f'"data" list; it holds a {type(data).__name__}.')
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise MinisummError(f"Data file {path} item {index} is a JSON {type(row).__name__}, not an object; "
                                f"every item must be one object like "
                                f'{{"article": ..., "highlights": ...}}.')
    return [(f"item {index}", row) for index, row in enumerate(data)]


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict]]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # strict: a stray quote is an error
    rows, start = [], 1
    try:
        names = next(reader, [])
        _check_header(path, names)
        start = reader.line_num + 1
        for cells in reader:
            if not cells:  # a blank line
                start = reader.line_num + 1
                continue
            if len(cells) != len(names):
                raise MinisummError(
                    f"Data file {path}: the row starting on line {start} has {len(cells)} cells but the header "
                    f"names {len(names)} columns; put quotes around cells that hold commas (\"like, this\"), "
                    f"and check that every quote is closed.")
            rows.append((f"line {start}", dict(zip(names, cells))))
            start = reader.line_num + 1
    except csv.Error as error:
        raise MinisummError(f"Data file {path} is not valid CSV in the row starting on line {start} ({error}); "
                            f"check its quotes: a cell that holds a quote is written \"like \"\"this\"\"\", "
                            f"in quotes, its quotes doubled.") from None
    return rows


def _check_header(path: Path, names: list[str]) -> None:
    """A CSV's first row must name its columns: once each, as short names rather than article text."""
    longest = max(names, key=len, default="")
    if len(longest) > HEADER_NAME_LIMIT or any("\n" in name for name in names):
        raise MinisummError(f"Data file {path} seems to have no header row: its first row holds a cell of "
                            f"{len(longest):,} characters, which looks like data; add a first line naming the "
                            f"columns, e.g. article,highlights,id.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise MinisummError(f"Data file {path} names the column {repeated[0]!r} twice in its header; every "
                            f"column needs its own name.")
