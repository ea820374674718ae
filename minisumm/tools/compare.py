"""`python -m minisumm.tools.compare RUN...`: one Markdown table comparing training runs and baselines, plus plots.

    python -m minisumm.tools.compare runs/*                          # prints the table, writes runs/comparison.md
    python -m minisumm.tools.compare runs/lora-* runs/baseline-lead3 --out report.md

Each argument is a folder:
- a training run (train.py): `summary.json`, `metrics.jsonl`, and `eval/metrics.json` once evaluate.py ran;
- an unfinished run (config.json and metrics.jsonl but no summary.json: interrupted, or still training):
  what metrics.jsonl tells;
- a baseline (evaluate.py --baseline): only `eval/metrics.json`; the training columns show "—".
Anything else (a stray file, an empty folder, unreadable JSON) is skipped with a one-line note.

Rows: baselines first, then runs from the fewest trainable parameters to the most, which for the four
methods is prompt → LoRA → last layers → full. ROUGE columns are F-measures × 100 as evaluate.py stores
them (Lin 2004, Google's rouge-score): the bootstrap median with its 95% interval, `36.1 [35.2, 37.0]`.
Sizes use 1 KB = 1,024 bytes; checkpoint size is the run's best/ folder (the trained weights + config).

The table goes to stdout and to `--out`, by default `comparison.md` in the common parent folder of the
given folders (`runs/` for `runs/*`), so the report lands beside the runs it describes whatever the
working directory. With matplotlib (the optional `plot` extra) two PNGs are written beside it:
`<stem>-val-loss.png` (validation loss of every run from metrics.jsonl, against epochs, or optimizer steps
with `--x-axis step`) and
`<stem>-rouge.png` (ROUGE-Lsum against trainable parameters, log scale; baselines as horizontal lines).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from minisumm.tools.atomic import check_writable, write_text
from minisumm.errors import ArgumentParser, MinisummError, run_cli, writing

DASH = "—"
BASELINES = ("lead3", "zero-shot")
ROUGE_COLUMNS = (("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"), ("rougeLsum", "ROUGE-Lsum"))


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
    curve = _eval_records(path / "metrics.jsonl")
    if summary is not None:
        return Entry(path.name, path, "run", summary.get("method", "?"), summary, evaluation, curve)
    if config is not None:
        method = config.get("config", {}).get("method", {}).get("method", "?")
        return Entry(path.name, path, "unfinished", method, {}, evaluation, curve)
    source = str(evaluation.get("source", "?"))  # "lead3", "zero-shot", or a checkpoint scored with --out
    return Entry(path.name, path, "baseline", f"{source} (baseline)" if source in BASELINES else source, {},
                 evaluation)


def read_entries(paths) -> tuple[list[Entry], list[str]]:
    """Rows for the folders among `paths` (baselines first, then by trainable parameters) and skip notes."""
    entries, notes = [], []
    for path in paths:
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
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise MinisummError(f"{path.name} could not be read ({error})") from None
    if not isinstance(data, dict):
        raise MinisummError(f"{path.name} does not hold a JSON object")
    return data


# The numbers the table reads from each file; any of them may be absent, but one that is there is a number.
SUMMARY_NUMBERS = ("trainable_params", "total_params", "trainable_share", "checkpoint_bytes", "steps", "epochs",
                   "wall_time_s", "tokens_per_s", "peak_memory_mb", "best_val_loss")
EVAL_NUMBERS = ("loss", "examples")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_fields(name: str, data: dict, numbers: tuple[str, ...]) -> None:
    for key in numbers:
        if data.get(key) is not None and not _is_number(data[key]):
            raise MinisummError(f"{name} has {key} = {data[key]!r}, not a number")
    for key in ("method", "source"):
        if key in data and not isinstance(data[key], str):
            raise MinisummError(f"{name} has {key} = {data[key]!r}, not text")


def _check_rouge(rouge) -> None:
    """eval/metrics.json's "rouge": {"rouge1": {"mean": 36.2, "mid": 36.1, "low": 35.2, "high": 37.0}, ...}."""
    if rouge is None:
        return
    if not isinstance(rouge, dict):
        raise MinisummError(f"eval/metrics.json has rouge = {rouge!r}, not an object of scores")
    for key, score in rouge.items():
        if not isinstance(score, dict) or not _is_number(score.get("mid", score.get("mean"))) or not all(
                score.get(bound) is None or _is_number(score[bound]) for bound in ("low", "high")):
            raise MinisummError(f"eval/metrics.json has rouge.{key} = {score!r}, not a score with numbers "
                                f"mid (or mean), low and high")


def _eval_records(path: Path) -> list[dict]:
    """The validation losses of metrics.jsonl; a resumed run may repeat a step, and its last record wins."""
    if not path.is_file():
        return []
    by_step = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by a crash mid-write
            continue
        if (isinstance(record, dict) and record.get("type") == "eval" and _is_number(record.get("step"))
                and _is_number(record.get("val_loss")) and _is_number(record.get("epoch", 0))):
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


# ------------------------------------------------------------------------------------------------ table
HEADER = ("Run", "Method", "Trainable params", "Checkpoint", "Steps (epochs)", "Wall time", "Tokens/s",
          "Peak memory", "Best val loss", "Test loss", "Test examples", *(title for _, title in ROUGE_COLUMNS))


def table_row(entry: Entry) -> list[str]:
    s, ev = entry.summary, entry.evaluation or {}
    best_val = s.get("best_val_loss")
    if entry.kind == "unfinished" and entry.curve:
        best_val = min(r["val_loss"] for r in entry.curve)
    steps = s.get("steps", entry.curve[-1]["step"] if entry.curve else None)
    epochs = s.get("epochs", entry.curve[-1].get("epoch") if entry.curve else None)
    rouge = ev.get("rouge", {})
    return [
        entry.name + (" (unfinished)" if entry.kind == "unfinished" else ""),
        entry.method,
        _number(s.get("trainable_params"), lambda n: format_params(n, s.get("trainable_share"))),
        _number(s.get("checkpoint_bytes"), format_bytes),
        _number(steps, lambda n: f"{n:,}" + ("" if epochs is None else f" ({epochs:.2f})")),
        _number(s.get("wall_time_s"), format_seconds),
        _number(s.get("tokens_per_s"), lambda x: f"{x:,.0f}"),
        _number(s.get("peak_memory_mb"), lambda mb: format_bytes(mb * 2**20)),
        _number(best_val, lambda x: f"{x:.3f}"),
        _number(ev.get("loss"), lambda x: f"{x:.3f}"),
        _number(ev.get("examples"), lambda n: f"{n:,}"),
        *(_number(rouge.get(key), format_interval) for key, _ in ROUGE_COLUMNS),
    ]


def markdown_table(entries: list[Entry]) -> str:
    """A GitHub-flavoured Markdown table, a row per entry; numbers right-aligned."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    align = ["---", "---", *["---:"] * (len(HEADER) - 2)]
    return "\n".join([line(HEADER), line(align), *(line(table_row(e)) for e in entries)])


LEGEND = (
    "ROUGE: F-measure × 100 on the test examples evaluated, bootstrap median [95% interval] (rouge-score, "
    "stemmed; ROUGE-Lsum is the summary-level ROUGE-L that CNN/DailyMail papers report). Test loss: mean "
    "cross-entropy per summary token. Wall time: the whole training run, validations included. Checkpoint: "
    "the best/ folder. Peak memory: CUDA tensors on a GPU, the "
    "process's resident memory on a CPU. —: not applicable or not evaluated.")


# ------------------------------------------------------------------------------------------------ plots
def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None without the optional `plot` extra."""
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display needed: the plots only go to files
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_val_loss(entries: list[Entry], path: Path, x_axis: str = "epoch") -> bool:
    """Validation loss of every run with eval records against `x_axis` ("epoch" or "step"); False if none."""
    plt = _pyplot()
    runs = [e for e in entries if e.curve]
    if plt is None or not runs:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for entry in runs:
        xs = [r.get(x_axis, r["step"]) for r in entry.curve]
        ax.plot(xs, [r["val_loss"] for r in entry.curve], marker="o", markersize=3, label=entry.name)
    ax.set(xlabel="optimizer step" if x_axis == "step" else "epoch", ylabel="validation loss (per token)",
           title="Validation loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_rouge_vs_params(entries: list[Entry], path: Path) -> bool:
    """ROUGE-Lsum (ROUGE-1 if some file lacks it) of evaluated runs against trainable parameters (log x),
    with 95% intervals as error bars and baselines as horizontal lines; False if no run was evaluated."""
    plt = _pyplot()
    scored = [e for e in entries if e.evaluation and e.evaluation.get("rouge")]
    runs = [e for e in scored if e.summary.get("trainable_params")]
    if plt is None or not runs:
        return False
    key = "rougeLsum" if all("rougeLsum" in e.evaluation["rouge"] for e in scored) else "rouge1"
    title = dict(ROUGE_COLUMNS)[key]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for entry in runs:
        score = entry.evaluation["rouge"][key]
        mid = score.get("mid", score.get("mean"))
        err = [[mid - score["low"]], [score["high"] - mid]] if score.get("low") is not None else None
        ax.errorbar([entry.summary["trainable_params"]], [mid], yerr=err, fmt="o", capsize=4, label=entry.name)
    for entry, style in zip((e for e in scored if e.kind == "baseline"), ("--", ":", "-.", (0, (1, 3)))):
        score = entry.evaluation["rouge"][key]
        ax.axhline(score.get("mid", score.get("mean")), color="grey", linestyle=style, label=entry.name)
    ax.set_xscale("log")
    ax.set(xlabel="trainable parameters (log scale)", ylabel=f"{title} (F × 100)", title=f"{title} vs. trainable "
           "parameters")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _draw_atomically(draw, path: Path) -> bool:
    """Run `draw(file)` on a temporary PNG beside `path`, then rename it into place: a failed or killed
    write never leaves half a PNG."""
    temporary = path.with_name(f".{path.stem}.tmp.png")
    try:
        drawn = draw(temporary)
        if drawn:
            os.replace(temporary, path)
        return drawn
    finally:
        temporary.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ CLI
def default_out(paths) -> Path:
    """`comparison.md` in the deepest folder holding every given path (their common parent)."""
    common = Path(os.path.commonpath([Path(p).resolve().parent for p in paths]))
    if common.is_relative_to(Path.cwd()):  # runs/comparison.md rather than /home/.../runs/comparison.md
        common = common.relative_to(Path.cwd())
    return common / "comparison.md"


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m minisumm.tools.compare", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="*", help="Run folders (train.py) and baseline folders (evaluate.py --baseline).")
    p.add_argument("--out", default=None, help="Markdown file to write, or a folder to write comparison.md in "
                                               "(default: comparison.md in the common parent folder of the runs); "
                                               "PNGs go beside it.")
    p.add_argument("--x-axis", default="epoch", choices=("epoch", "step"),
                   help="x of the validation-loss plot (default: epoch, which compares runs with different batch "
                        "sizes fairly).")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    folders = [p for p in args.runs if os.path.isdir(p)]  # a stray file elsewhere must not move the report
    out = Path(args.out) if args.out else default_out(folders) if folders else Path("comparison.md")
    if out.is_dir():  # --out DIR: the report and its plots go inside DIR
        out = out / "comparison.md"
    check_writable(out.parent, "--out")  # before any file is written
    plots = {"val_loss": out.with_name(f"{out.stem}-val-loss.png"), "rouge": out.with_name(f"{out.stem}-rouge.png")}
    ours = {os.path.abspath(p) for p in (out, *plots.values())}  # a rerun on runs/* meets its own report
    entries, notes = read_entries(p for p in args.runs if os.path.abspath(p) not in ours)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not entries:
        raise MinisummError(f"None of the {len(args.runs)} paths given is a run or baseline folder; give folders "
                            f"written by train.py or evaluate.py, e.g. python -m minisumm.tools.compare runs/*.")
    table = markdown_table(entries)
    print(table)

    written = []
    with writing(f"the comparison {out}", "pass another --out"):
        out.parent.mkdir(parents=True, exist_ok=True)
        if _pyplot() is None:
            print("note: plots skipped: matplotlib is not installed (pip install minisumm[plot] to get them).",
                  file=sys.stderr)
        else:
            for title, key, draw in (("Validation loss", "val_loss", lambda p: plot_val_loss(entries, p, args.x_axis)),
                                     ("ROUGE against trainable parameters", "rouge",
                                      lambda p: plot_rouge_vs_params(entries, p))):
                if _draw_atomically(draw, plots[key]):
                    written.append((title, plots[key]))
        images = "".join(f"\n![{title}]({path.name})\n" for title, path in written)
        write_text(out, f"# minisumm comparison\n\n{table}\n\n{LEGEND}\n{images}")
    for path in [out, *(path for _, path in written)]:
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
