"""`python -m minisumm.tools.compare RUN...`: a table comparing training runs and baselines, plus plots.

    python -m minisumm.tools.compare runs/*                          # writes runs/comparison.md, .csv, PNGs
    python -m minisumm.tools.compare runs/lora-* runs/baseline-lead3 --out report.md

Each argument is a folder:
- a training run (train.py): `summary.json`, `metrics.jsonl`, and `eval/metrics.json` once evaluate.py ran;
- an unfinished run (config.json and metrics.jsonl but no summary.json: interrupted, or still training):
  what metrics.jsonl tells;
- a baseline (evaluate.py --baseline): only `eval/metrics.json`; the training columns show "—".
A plain file is skipped without a word (`runs/*` also matches the files that run_all.py writes beside the
runs); anything else (a missing path, an empty folder, unreadable JSON) is skipped with a one-line note.

Rows: baselines first, then runs from the fewest trainable parameters to the most, which for the five
methods at their defaults is prompt → LoRA → prefix → last layers → full. ROUGE columns are F-measures × 100
as evaluate.py stores them (Lin 2004, Google's rouge-score): the bootstrap median with its 95% interval, `36.1 [35.2, 37.0]`.
Sizes use 1 KB = 1,024 bytes; checkpoint size is the run's best/ folder (the trained weights + config).

The terminal gets the key columns (run, trainable parameters, best validation loss, wall time, ROUGE-L with
its interval, peak memory) and a line saying what "peak memory" measured on the runs' device. The full
table goes to `--out`, by default `comparison.md` in the common parent folder of the given folders
(`runs/` for `runs/*`), so the report lands beside the runs it describes whatever the working directory;
beside it `comparison.csv` holds every column as plain numbers, one row per folder. With matplotlib (the
optional `plot` extra) three PNGs go beside it too (`minisumm/tools/plots.py` draws them):
`<stem>-loss.png` (training and validation loss of every run from metrics.jsonl, against epochs, or
optimizer steps with `--x-axis step`), `<stem>-rouge.png` (ROUGE-L against trainable parameters, log scale)
and `<stem>-cost.png` (ROUGE-L against training wall time and peak memory). An existing file among these
that compare did not write (a run's summary.json given as `--out`, your own notes) is refused before any
work, never overwritten (`written_by_compare`). Every JSON file is read strictly (`minisumm.tools.json_files`).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from minisumm.tools.atomic import check_writable, write_text
from minisumm.errors import MinisummError, excerpt, run_cli, writing
from minisumm.tools import json_files
from minisumm.tools.flags import FlagParser
from minisumm.tools.console import PEAK_MEMORY_MEANS, memory_kind
from minisumm.metrics import BASELINES, ROUGE_NAMES

DASH = "—"
ROUGE_COLUMNS = tuple(ROUGE_NAMES.items())  # (key, title) pairs
KEY_ROUGE = ROUGE_COLUMNS[2]  # ROUGE-L: the one score in the terminal table and the plots


@dataclass
class Entry:
    """One row: a training run, an unfinished run or a baseline, with what its files hold."""
    name: str
    path: Path
    kind: str  # "run", "unfinished" or "baseline"
    method: str
    summary: dict = field(default_factory=dict)  # summary.json; empty unless kind == "run"
    evaluation: dict | None = None  # eval/metrics.json, None when not evaluated
    curve: list[dict] = field(default_factory=list)  # metrics.jsonl eval records, one per step, by step
    train_curve: list[dict] = field(default_factory=list)  # metrics.jsonl train records (loss), by step


# ------------------------------------------------------------------------------------------------ reading
def read_entry(path: str | Path) -> Entry:
    """The row for one folder; a MinisummError saying why when it is not a run or baseline folder."""
    path = Path(path)
    if not path.is_dir():
        raise MinisummError("not a folder" if path.exists() else "does not exist")
    summary = _read_json(path / "summary.json")
    evaluation = _read_json(path / "eval" / "metrics.json")
    # config.json alone could be a checkpoint (best/, last/); a run folder also has the log it starts with
    config = _read_json(path / "config.json") if (path / "metrics.jsonl").is_file() else None
    if summary is None and evaluation is None and config is None:
        raise MinisummError("not a run folder (no summary.json, metrics.jsonl or eval/metrics.json)")
    for name, data, numbers in (("summary.json", summary, SUMMARY_NUMBERS),
                                ("eval/metrics.json", evaluation, EVAL_NUMBERS)):
        if data is not None:
            _check_fields(name, data, numbers)
    if evaluation is not None:
        _check_rouge(evaluation.get("rouge"))
        facts = evaluation.get("facts")
        if facts is not None and not isinstance(facts, dict):
            raise MinisummError(f"eval/metrics.json has facts = {facts!r}, not an object of scores")
        _check_fields("eval/metrics.json facts", facts or {}, tuple(key for key, _ in FACT_COLUMNS))
    curve = _log_records(path / "metrics.jsonl", "eval", "val_loss")
    train_curve = _log_records(path / "metrics.jsonl", "train", "loss")
    if summary is not None:
        return Entry(path.name, path, "run", summary.get("method", "?"), summary, evaluation, curve, train_curve)
    if config is not None:
        method = config.get("config", {}).get("method", {}).get("method", "?")
        return Entry(path.name, path, "unfinished", method, {}, evaluation, curve, train_curve)
    source = str(evaluation.get("source", "?"))  # "lead3", "zero-shot", or a checkpoint scored with --out
    return Entry(path.name, path, "baseline", f"{source} (baseline)" if source in BASELINES else source, {},
                 evaluation)


def read_entries(paths) -> tuple[list[Entry], list[str]]:
    """Rows for the folders among `paths` (baselines first, then by trainable parameters) and skip notes;
    plain files are passed over silently."""
    entries, notes = [], []
    for path in paths:
        if os.path.isfile(path):  # a glob such as runs/tiny/* also matches run_all's test.jsonl, commands.sh
            continue
        try:
            entries.append(read_entry(path))
        except MinisummError as why:
            notes.append(f"skipped {path}: {why}")
    entries.sort(key=lambda e: (e.kind != "baseline", e.summary.get("trainable_params", math.inf), e.name))
    return entries, notes


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json_files.read(path)
    except (OSError, ValueError) as error:
        raise MinisummError(f"{path.name} could not be read ({error})") from None
    if not isinstance(data, dict):
        raise MinisummError(f"{path.name} does not hold a JSON object")
    return data


# The numbers the table and plots read from each file; any of them may be absent (or null), but one that is
# there is a number of its kind: counts are whole, and nothing here is negative (a log axis needs > 0).
SUMMARY_NUMBERS = ("trainable_params", "total_params", "trainable_share", "checkpoint_bytes", "steps", "epochs",
                   "wall_time_s", "tokens_per_s", "peak_memory_mb", "best_val_loss")
EVAL_NUMBERS = ("loss", "examples")
COUNTS = ("trainable_params", "total_params", "checkpoint_bytes", "steps", "examples")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_fields(name: str, data: dict, numbers: tuple[str, ...]) -> None:
    for key in numbers:
        value = data.get(key)
        if value is None:
            continue
        if key in COUNTS:
            ok, kind = _is_number(value) and isinstance(value, int) and value >= 0, "a whole number, 0 or more"
        elif key == "trainable_share":
            ok, kind = _is_number(value) and 0 <= value <= 1, "a share from 0 to 1"
        else:
            ok, kind = _is_number(value) and value >= 0, "a number, 0 or more"
        if not ok:
            raise MinisummError(f"{name} has {key} = {excerpt(value)}, not {kind}")
    for key in ("method", "source"):
        if key in data and not isinstance(data[key], str):
            raise MinisummError(f"{name} has {key} = {excerpt(data[key])}, not text")


def _check_rouge(rouge) -> None:
    """eval/metrics.json's "rouge": {"rouge1": {"mean": 36.2, "mid": 36.1, "low": 35.2, "high": 37.0}, ...}."""
    if rouge is None:
        return
    if not isinstance(rouge, dict):
        raise MinisummError(f"eval/metrics.json has rouge = {rouge!r}, not an object of scores")
    for key, score in rouge.items():
        if not isinstance(score, dict) or not _is_number(score.get("mid", score.get("mean"))) or not all(
                score.get(bound) is None or _is_number(score[bound]) for bound in ("low", "high")) or (
                score.get("low") is not None and score.get("high") is not None
                and not score["low"] <= score.get("mid", score.get("mean")) <= score["high"]):
            raise MinisummError(f"eval/metrics.json has rouge.{key[:40]} = {excerpt(score)}, not a score with "
                                f"numbers low <= mid (or mean) <= high")


def _log_records(path: Path, kind: str, value: str) -> list[dict]:
    """metrics.jsonl's records of type `kind` ("eval", "train") that hold a number `value` ("val_loss",
    "loss"), one per step; a resumed run may repeat a step, and its last record wins."""
    if not path.is_file():
        return []
    by_step = {}
    for line in path.read_bytes().splitlines():
        try:
            record = json_files.parse(json_files.decode(line))
        except ValueError:  # a line cut short by a crash mid-write, or bytes that are no text
            continue
        if (isinstance(record, dict) and record.get("type") == kind and _is_number(record.get("step"))
                and _is_number(record.get(value)) and _is_number(record.get("epoch", 0))):
            by_step[record["step"]] = record
    return [by_step[step] for step in sorted(by_step)]


# ------------------------------------------------------------------------------------------------ numbers
def format_params(count: int, share: float | None) -> str:
    """`294,912 (0.236%)`: the count with thousands separators, the share of all parameters in percent."""
    return f"{count:,}" if share is None else f"{count:,} ({format_percent(share)})"


def format_percent(share: float) -> str:
    percent = 100 * share
    if percent >= 99.95:
        return "100%"
    return f"{percent:#.3g}%"  # three significant digits: 0.0123%, 0.236%, 2.20%, 11.4%


def format_bytes(size: float) -> str:
    """`18 KB`, `1.2 MB`, `475 MB`, `1.3 GB` (1 KB = 1,024 bytes)."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            break
        size /= 1024
    return f"{size:.0f} {unit}" if unit == "B" or size >= 10 else f"{size:.1f} {unit}"


def format_seconds(seconds: float) -> str:
    """`8.4 s`, `42 s`, `3.5 min`, `2.1 h`."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_interval(score: dict) -> str:
    """`36.1 [35.2, 37.0]`: bootstrap median and 95% interval; the plain mean when there is no interval."""
    if score.get("low") is None or score.get("high") is None:
        return f"{score.get('mid', score.get('mean')):.1f}"
    return f"{score['mid']:.1f} [{score['low']:.1f}, {score['high']:.1f}]"


def _number(value, fmt) -> str:
    return DASH if value is None or (isinstance(value, float) and not math.isfinite(value)) else fmt(value)


# ------------------------------------------------------------------------------------------------ tables
def row_values(entry: Entry) -> dict:
    """Every column's plain value for one entry, keyed by the CSV's column names; None where the files do not
    say. Seconds, MB, bytes, ROUGE F × 100 with the interval's `_low` and `_high`."""
    s, ev = entry.summary, entry.evaluation or {}
    best_val = s.get("best_val_loss")
    if entry.kind == "unfinished" and entry.curve:
        best_val = min(r["val_loss"] for r in entry.curve)
    values = {
        "run": entry.name, "kind": entry.kind, "method": entry.method, "device": s.get("device"),
        "trainable_params": s.get("trainable_params"), "total_params": s.get("total_params"),
        "trainable_share": s.get("trainable_share"), "checkpoint_bytes": s.get("checkpoint_bytes"),
        "steps": s.get("steps", entry.curve[-1]["step"] if entry.curve else None),
        "epochs": s.get("epochs", entry.curve[-1].get("epoch") if entry.curve else None),
        "wall_time_s": s.get("wall_time_s"), "tokens_per_s": s.get("tokens_per_s"),
        "peak_memory_mb": s.get("peak_memory_mb"), "best_val_loss": best_val, "test_loss": ev.get("loss"),
        "test_examples": ev.get("examples")}
    for key, _ in ROUGE_COLUMNS:
        score = ev.get("rouge", {}).get(key) or {}
        values |= {f"{key}_mid": score.get("mid", score.get("mean")), f"{key}_low": score.get("low"),
                   f"{key}_high": score.get("high")}
    facts = ev.get("facts") or {}
    values |= {key: facts.get(key) for key, _ in FACT_COLUMNS}
    return values


# eval/metrics.json's "facts" (shares in [0, 1]; minisumm.facts, minisumm.tiny_news.facts) and their titles
FACT_COLUMNS = (("copy_precision", "Copy precision"), ("fact_recall", "Fact recall"),
                ("invented_facts", "Invented facts"))


HEADER = ("Run", "Method", "Trainable params", "Checkpoint", "Steps (epochs)", "Wall time", "Tokens/s",
          "Peak memory", "Best val loss", "Test loss", "Test examples", *(title for _, title in ROUGE_COLUMNS),
          *(title for _, title in FACT_COLUMNS))


def table_row(entry: Entry) -> list[str]:
    """The Markdown table's cells for one entry, in HEADER's order."""
    v, rouge = row_values(entry), (entry.evaluation or {}).get("rouge", {})
    return [
        entry.name + (" (unfinished)" if entry.kind == "unfinished" else ""),
        entry.method,
        _number(v["trainable_params"], lambda n: format_params(n, v["trainable_share"])),
        _number(v["checkpoint_bytes"], format_bytes),
        _number(v["steps"], lambda n: f"{n:,}" + ("" if v["epochs"] is None else f" ({v['epochs']:.2f})")),
        _number(v["wall_time_s"], format_seconds),
        _number(v["tokens_per_s"], lambda x: f"{x:,.0f}"),
        _number(v["peak_memory_mb"], lambda mb: format_bytes(mb * 2**20)),
        _number(v["best_val_loss"], lambda x: f"{x:.3f}"),
        _number(v["test_loss"], lambda x: f"{x:.3f}"),
        _number(v["test_examples"], lambda n: f"{n:,}"),
        *(_number(rouge.get(key), format_interval) for key, _ in ROUGE_COLUMNS),
        *(_number(v[key], lambda share: f"{100 * share:.0f}%") for key, _ in FACT_COLUMNS),
    ]


def markdown_table(entries: list[Entry]) -> str:
    """A GitHub-flavoured Markdown table, a row per entry; numbers right-aligned."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    align = ["---", "---", *["---:"] * (len(HEADER) - 2)]
    return "\n".join([line(HEADER), line(align), *(line(table_row(e)) for e in entries)])


def csv_text(entries: list[Entry]) -> str:
    """Every column as plain numbers (see `row_values`), a row per entry; empty where unknown."""
    rows = [row_values(entry) for entry in entries]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({column: "" if value is None else value for column, value in row.items()} for row in rows)
    return buffer.getvalue()


# The key columns, from the full table's cells: short enough for a 100-character terminal.
TERMINAL_COLUMNS = ("Run", "Trainable params", "Best val loss", "Wall time", f"{KEY_ROUGE[1]} [95%]",
                    "Peak memory")


def terminal_table(entries: list[Entry]) -> str:
    """The key columns aligned in plain text; a run's method is named beside it where the name does not say it."""
    rows = []
    for entry in entries:
        cells = dict(zip(HEADER, table_row(entry)))
        notes = [] if entry.method.removesuffix(" (baseline)") in entry.name else [entry.method]
        notes += ["unfinished"] if entry.kind == "unfinished" else []
        rows.append([entry.name + (f" ({', '.join(notes)})" if notes else ""), cells["Trainable params"],
                     cells["Best val loss"], cells["Wall time"], cells[KEY_ROUGE[1]], cells["Peak memory"]])
    widths = [max(len(row[i]) for row in [TERMINAL_COLUMNS, *rows]) for i in range(len(TERMINAL_COLUMNS))]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(TERMINAL_COLUMNS), "  ".join("-" * w for w in widths), *map(line, rows)]).rstrip()


LEGEND = (
    "ROUGE: F-measure × 100 on the test examples evaluated, bootstrap median [95% interval] (rouge-score, "
    "stemmed; ROUGE-Lsum is the summary-level ROUGE-L that CNN/DailyMail papers report). Test loss: mean "
    "cross-entropy per summary token. Wall time: the whole training run, validations included. Checkpoint: "
    "the best/ folder. Copy precision: the share of the predictions' names and numbers that occur in their "
    "own article (any data). Fact recall: the share of the reference highlights' facts stated, in a sentence "
    "mixing in no wrong fact; invented facts: the share of the predictions' facts that their article does "
    "not contain (generated stories only, whose facts are known). —: not applicable or not evaluated.")
PEAK_MEMORY = {kind: means[1:] for kind, means in PEAK_MEMORY_MEANS.items()}  # (axis label, footnote)


def memory_kinds(entries: list[Entry]) -> list[str]:
    """The keys of PEAK_MEMORY that describe the runs reporting a peak ("cpu", "cuda"); both if unsaid."""
    measured = [e.summary for e in entries if e.summary.get("peak_memory_mb") is not None]
    kinds = {memory_kind(s["device"]) for s in measured if s.get("device")}
    return sorted(kinds) if kinds or not measured else sorted(PEAK_MEMORY)


def peak_memory_note(entries: list[Entry]) -> str | None:
    """"Peak memory: ..." worded for the devices the runs trained on; None when no run reports a peak."""
    kinds = memory_kinds(entries)
    return "Peak memory: " + "; ".join(PEAK_MEMORY[kind][1] for kind in kinds) + "." if kinds else None


# ------------------------------------------------------------------------------------------------ CLI
def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None without the optional `plot` extra."""
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display needed: the plots only go to files
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def default_out(paths) -> Path:
    """`comparison.md` in the deepest folder holding every given path (their common parent)."""
    common = Path(os.path.commonpath([Path(p).resolve().parent for p in paths]))
    if common.is_relative_to(Path.cwd()):  # runs/comparison.md rather than /home/.../runs/comparison.md
        common = common.relative_to(Path.cwd())
    return common / "comparison.md"


HEADING = "# minisumm comparison"  # the report's first line


def written_by_compare(path: Path, report: Path) -> bool:
    """Is the existing file `path` one that compare wrote: the report by its first line, the CSV by its
    header row, a plot by the title compare puts in its metadata (`plots.PNG_TITLE`) or, for plots written
    before it did, by being a PNG beside a report of ours? Anything else (a run's summary.json, your own
    notes) is never overwritten."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(65536)
    except OSError:
        return False
    if path.suffix == ".png":
        from minisumm.tools.plots import PNG_TITLE

        return head.startswith(b"\x89PNG") and (f"Title\0{PNG_TITLE}".encode() in head or (
            path != report and report.exists() and written_by_compare(report, report)))
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    return first == HEADING.encode() if path == report else first.startswith(b"run,kind,method,")


def parser(prog: str = "python -m minisumm.tools.compare") -> argparse.ArgumentParser:
    p = FlagParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="*", help="Run folders (train.py) and baseline folders (evaluate.py --baseline).")
    p.add_argument("--out", default=None, help="Markdown file to write, or a folder to write comparison.md in "
                                               "(default: comparison.md in the common parent folder of the runs); "
                                               "the CSV and PNGs go beside it.")
    p.add_argument("--x-axis", default="epoch", choices=("epoch", "step"),
                   help="x of the loss plot (default: epoch, which compares runs with different batch sizes "
                        "fairly).")
    return p


def main(argv=None, prog: str = "python -m minisumm.tools.compare") -> int:
    args = parser(prog).parse_args(argv)
    folders = [p for p in args.runs if os.path.isdir(p)]  # a stray file elsewhere must not move the report
    out = Path(args.out) if args.out else default_out(folders) if folders else Path("comparison.md")
    if out.is_dir():  # --out DIR: the report and its plots go inside DIR
        out = out / "comparison.md"
    check_writable(out.parent, "--out")  # before any file is written
    table_csv = out.with_suffix(".csv")
    images = {name: out.with_name(f"{out.stem}-{name}.png") for name in ("loss", "rouge", "cost")}
    for path in (out, table_csv, *images.values()):
        if path.exists() and not written_by_compare(path, out):
            raise MinisummError(f"--out {out} would overwrite {path}, which compare did not write; choose "
                                f"another --out.")
    ours = {os.path.abspath(p) for p in (out, table_csv, *images.values())}  # a rerun on runs/* meets its report
    entries, notes = read_entries(p for p in args.runs if os.path.abspath(p) not in ours)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not entries:
        raise MinisummError(f"None of the {len(args.runs)} paths given is a run or baseline folder; give folders "
                            f"written by train.py or evaluate.py, e.g. python -m minisumm.tools.compare runs/*.")
    memory_note = peak_memory_note(entries)
    print(terminal_table(entries))
    if memory_note:
        print("\n" + textwrap.fill(memory_note, width=100))

    written = []
    with writing(f"the comparison {out}", "pass another --out"):
        out.parent.mkdir(parents=True, exist_ok=True)
        plt = _pyplot()
        if plt is None:
            print("note: plots skipped: matplotlib is not installed (pip install matplotlib, or install minisumm "
                  "with its plot extra: pip install -e '.[plot]').",
                  file=sys.stderr)
        else:
            from minisumm.tools import plots

            key, title = KEY_ROUGE
            memory = " / ".join(PEAK_MEMORY[kind][0] for kind in memory_kinds(entries))
            for name, caption, figure in (
                    ("loss", "Training and validation loss", lambda: plots.loss_figure(plt, entries, args.x_axis)),
                    ("rouge", f"{title} against trainable parameters",
                     lambda: plots.rouge_figure(plt, entries, key, title)),
                    ("cost", f"{title} against training time and peak memory",
                     lambda: plots.cost_figure(plt, entries, key, title, memory))):
                fig = figure()
                if fig is not None:
                    plots.save_figure(plt, fig, images[name])
                    written.append((caption, images[name]))
        write_text(table_csv, csv_text(entries))
        pictures = "".join(f"\n![{caption}]({path.name})\n" for caption, path in written)
        footnote = f"\n{memory_note}\n" if memory_note else ""
        write_text(out, f"{HEADING}\n\n{markdown_table(entries)}\n\n{LEGEND}\n{footnote}"
                        f"\nEvery column as plain numbers: [{table_csv.name}]({table_csv.name}).\n{pictures}")
    for path in [out, table_csv, *(path for _, path in written)]:
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
