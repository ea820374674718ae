"""`python evaluate.py RUN`: evaluation loss and ROUGE of a checkpoint, or of a baseline, on a test split.

    python evaluate.py runs/lora-20261128-101500               # the run's own test split and settings
    python evaluate.py runs/lora-… --data my.jsonl             # every row of a file
    python evaluate.py --baseline lead3 --data cnn_dailymail   # first three sentences of each article
    python evaluate.py --baseline zero-shot --model gpt2       # the untrained model with the "TL;DR:" cue

The model is rebuilt from the checkpoint's own config; GPT-2's GELU runs as one fused kernel and LoRA is
merged before decoding (no extra cost per token; with `--no-speedups` both stay as they were, and the loss is
`minisumm.loss`'s plain one); the soft prompt goes into the prefill. Decoding takes its own batch size
(`--decode-batch-size`: 64 on CUDA, where the loss pass's 8 would leave the GPU idle), in batches of similar
article lengths. Writes `eval/metrics.json` and `eval/predictions.jsonl`
(id, reference, prediction) in the run folder (or `--out`), and prints a short table. The decoding flags
are `minisumm.config.DecodeConfig`'s, shared with `summarize`. Progress bars (loss, then decoding) go to a
terminal's stderr only: piped or logged output stays clean. The output folder is checked and locked
(`minisumm.tools.folder_lock`) before the model loads, and a metrics.json or predictions.jsonl there that
evaluate.py did not write is refused, never overwritten; if it cannot be written after decoding (a full
disk), the results go to a temporary folder that the error names. Every flag is checked before any work.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from tqdm.auto import tqdm

from minisumm import batching, data, methods
from minisumm.compiling import compile_blocks
from minisumm.tools import checkpoint, folder_lock, json_files
from minisumm.tools.checkpoint import load_checkpoint
from minisumm.tools.atomic import check_writable, write_json, write_text
from minisumm.tools.console import library_bars
from minisumm.tools.data_files import SUPPORTED
from minisumm.tools.run_folder import EVAL_FILES
from minisumm.config import (DataConfig, DecodeConfig, ModelConfig, RunConfig, TrainConfig, add_arguments,
                             check_seed, section_from_args)
from minisumm.device import peak_memory_mb, reset_peak_memory, resolve_device, resolve_precision
from minisumm.errors import WRITE_ERRORS, MinisummError, run_cli, writing
from minisumm.tools.flags import FlagParser
from minisumm.tools.decoding import CUDA_DECODE_BATCH_SIZE, decode_batch_size, ready_to_decode, summarize
from minisumm.tools.loading import load
from minisumm import loss, speedups
from minisumm.speedups.fused_gelu import use_fused_gelu
from minisumm.model import build
from minisumm.metrics import BASELINES, ROUGE_TYPES, lead3, rouge_scores
from minisumm.facts import copy_precision
from minisumm.tiny_news.facts import fact_scores


# How to read a source (train.py's flags of the same names); the split's size and the layout stay the run's.
SOURCE_FLAGS = ("data_config", "article_field", "summary_field", "id_field", "train_split", "validation_split",
                "test_split")

def parser(prog: str = "evaluate.py") -> argparse.ArgumentParser:
    """The flags; each help text states its default once (argparse expands `%(default)r`)."""
    p = FlagParser(prog=prog, description="Evaluation loss and ROUGE of a minisumm checkpoint or a baseline.")
    p.add_argument("checkpoint", nargs="?", help="A run folder, or its best/ or last/ folder.")
    p.add_argument("--baseline", choices=BASELINES, help="Score a baseline instead of a checkpoint.")
    p.add_argument("--model", default="gpt2",
                   help="Base model of the zero-shot baseline, as for train.py. (default: %(default)r)")
    p.add_argument("--random-init", action="store_true", help="Zero-shot baseline with random weights.")
    p.add_argument("--data", default=None, help="Override the data source: cnn_dailymail, sample, a hub dataset "
                                                "OWNER/NAME, or a file (every row of a file is scored). (default: "
                                                "the checkpoint's own source; cnn_dailymail for a baseline)")
    for name in SOURCE_FLAGS:  # how to read the source, as for train.py; each overrides the run's own setting
        p.add_argument("--" + name.replace("_", "-"), default=None,
                       help=f"As train.py's --{name.replace('_', '-')}. (default: the checkpoint's own; "
                            f"{getattr(DataConfig(), name)!r} for a baseline)")
    p.add_argument("--split", default="test", choices=data.SPLITS,
                   help="Split of a named source to score. (default: %(default)r)")
    p.add_argument("--limit", type=int, default=None,
                   help="Score only the first N examples (N at least 1). (default: all of them)")
    add_arguments(p, DecodeConfig)
    p.add_argument("--batch-size", type=int, default=8,
                   help="Examples per batch of the loss pass. (default: %(default)r)")
    p.add_argument("--decode-batch-size", type=int, default=None,
                   help=f"Articles decoded together (similar lengths share a batch). (default: "
                        f"{CUDA_DECODE_BATCH_SIZE} on CUDA, where narrow batches leave the GPU idle; --batch-size "
                        f"on CPU)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto. (default: %(default)r)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="Precision of the loss (autocast) and of decoding (the model cast to it); "
                        "auto: bf16/fp16 on CUDA, fp32 on CPU. (default: %(default)r)")
    p.add_argument("--seed", type=int, default=0, help="Seed of the bootstrap intervals. (default: %(default)r)")
    add_arguments(p, TrainConfig, only=("speedups", "compile"))
    p.add_argument("--out", default=None, help="Output folder. (default: <run>/eval, or runs/baseline-<name>/eval)")
    p.add_argument("--no-progress", action="store_true",
                   help="No progress bars (they are only ever drawn on a terminal).")
    return p


def decode_config(args: argparse.Namespace) -> DecodeConfig:
    """The DecodeConfig of parsed flags (the flags `add_arguments(p, DecodeConfig)` made), validated."""
    decode = section_from_args(args, DecodeConfig)
    decode.validate()
    return decode


def main(argv=None, prog: str = "evaluate.py") -> int:
    args = parser(prog).parse_args(argv)
    decode = _check_args(args)
    out = _out_folder(args)
    check_writable(out, "--out")  # before hours of decoding, not after
    library_bars(not args.no_progress)  # transformers' and datasets' own bars: a terminal only
    with folder_lock.hold(out, "evaluation folder"):
        check_replaceable(out)
        results, examples, predictions = _evaluate(args, decode)
        _write(out, results, examples, predictions)
    print(table(results))
    print(f"Wrote {out / 'metrics.json'} and {out / 'predictions.jsonl'}")
    return 0


def _evaluate(args, decode: DecodeConfig) -> tuple[dict, list, list[str]]:
    """Load, score the loss, decode and compute ROUGE: `(results, examples, predictions)`."""
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    model, tokenizer, config = _load(args)
    data_cfg = config.data
    examples = _examples(args, data_cfg, config.train.seed)
    prefix = methods.prefix_tokens(config.method) if model is not None else 0
    results = {"source": str(args.checkpoint or args.baseline), "data": args.data or data_cfg.data,
               "split": None if _is_file(args.data) else args.split, "examples": len(examples),
               "device": str(device), "precision": precision}
    if model is None:  # lead-3
        started = time.perf_counter()
        predictions = [lead3(example.article) for example in examples]
    else:
        model.to(device)
        if args.speedups:
            use_fused_gelu(model)  # the loss pass's too; decoding's comes with ready_to_decode
        reset_peak_memory(device)  # the loss and the decoding each report their own peak
        results.update(_loss(model, tokenizer, examples, data_cfg, prefix, args, device, precision))
        results["loss_peak_memory_mb"] = peak_memory_mb(device)
        ready_to_decode(model, precision, args.speedups)  # LoRA merged, fused GELU, cast to the precision
        batch_size = decode_batch_size(args.decode_batch_size, device, args.batch_size)
        results["decode_batch_size"] = batch_size
        if args.compile:
            compile_blocks(model)
        reset_peak_memory(device)
        started = time.perf_counter()
        with _progress_bar(args, "decode", "summary", len(examples)) as bar:
            predictions = summarize(model, tokenizer, [e.article for e in examples], data_cfg, prefix, decode,
                                    batch_size=batch_size, progress=bar.update)
        results["decode_peak_memory_mb"] = peak_memory_mb(device)
    results["decode_time_s"] = time.perf_counter() - started
    scores = rouge_scores(predictions, [e.summary for e in examples], seed=args.seed)
    results["rouge"] = {key: {k: scores[key][k] for k in ("mean", "mid", "low", "high")} for key in ROUGE_TYPES}
    results["facts"] = fact_results(predictions, examples)
    results["decoding"] = dataclasses.asdict(decode)
    return results, examples, predictions


def fact_results(predictions: list[str], examples: list[data.Example]) -> dict:
    """Copy precision on any data; fact recall and invented facts too when every example is a generated story
    that carries its facts (the `sample` data, or stories written by `minisumm.tiny_news.synthetic_news`)."""
    articles = [e.article for e in examples]
    results = copy_precision(predictions, articles)
    if all(e.facts is not None for e in examples):
        results |= fact_scores(predictions, articles, [e.facts for e in examples])
    return results


def _progress_bar(args, desc: str, unit: str, total: int, iterable=None):
    """A tqdm bar on stderr (over `iterable` if given), drawn only on a terminal (`disable=None`: a pipe or a
    log file gets no carriage-return updates) and never with --no-progress; erased when done."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=True if args.no_progress else None,
                leave=False, dynamic_ncols=True)


def _check_args(args) -> DecodeConfig:
    """Refuse bad flags before the model loads; return the decoding settings."""
    if bool(args.checkpoint) == bool(args.baseline):
        raise MinisummError("Give either a checkpoint (python evaluate.py runs/<run>) or --baseline lead3|zero-shot.")
    for flag, value in (("--batch-size", args.batch_size), ("--limit", 1 if args.limit is None else args.limit),
                        ("--decode-batch-size", 1 if args.decode_batch_size is None else args.decode_batch_size)):
        if value < 1:
            raise MinisummError(f"{flag} must be at least 1; got {value}.")
    check_seed(args.seed)
    return decode_config(args)


def check_replaceable(out: Path) -> None:
    """Refuse, before any work, to replace a metrics.json or predictions.jsonl in `out` that evaluate.py did
    not write (a run's own file, your notes): it recognises its metrics by their keys and its predictions by
    their first line."""
    for name in EVAL_FILES:
        path = out / name
        if path.exists() and not _written_by_evaluate(path):
            raise MinisummError(f"--out {out} holds {name}, which evaluate.py did not write; it would be "
                                f"overwritten: choose another --out.")


def _written_by_evaluate(path: Path) -> bool:
    try:
        if path.name == "metrics.json":
            record = json_files.read(path)
            return isinstance(record, dict) and {"source", "examples", "rouge", "decoding"} <= record.keys()
        with open(path, "rb") as stream:
            first = stream.readline(1 << 20)
        return not first or set(json_files.parse(json_files.decode(first))) == {"id", "reference", "prediction"}
    except (OSError, ValueError, TypeError):
        return False


def _out_folder(args) -> Path:
    """Where the results go: --out, else the run folder's eval/ (a checkpoint) or runs/baseline-<name>/eval."""
    if args.out:
        return Path(args.out)
    if args.checkpoint:
        return checkpoint.run_of(checkpoint.resolve(args.checkpoint)) / "eval"
    return Path("runs") / f"baseline-{args.baseline}" / "eval"


def _load(args):
    """`(model or None for lead-3, tokenizer, RunConfig)`."""
    if args.checkpoint:
        folder = checkpoint.resolve(args.checkpoint)
        if folder.name.startswith("last") and not Path(args.checkpoint).name.startswith("last"):
            print(f"note: {args.checkpoint} has no best/ checkpoint; evaluating {folder.name}/ (the weights "
                  f"at the last save) instead.", file=sys.stderr)
        return load_checkpoint(folder)
    config = RunConfig(model=ModelConfig(model=args.model, random_init=args.random_init), data=DataConfig())
    if args.baseline == "lead3":
        return None, None, config
    config.method.method = "full"  # nothing is trained; "full" adds no module to the base model
    model, tokenizer, _, config = build(config, load)
    return model.eval(), tokenizer, config


def _is_file(source: str | None) -> bool:
    return source is not None and Path(source).suffix.lower() in SUPPORTED


def _examples(args, data_cfg: DataConfig, seed: int) -> list[data.Example]:
    for name in SOURCE_FLAGS:
        if getattr(args, name) is not None:
            setattr(data_cfg, name, getattr(args, name))
    if _is_file(args.data):
        examples = data.load_file(args.data, data_cfg)
    else:
        if args.data:
            data_cfg.data = args.data
        examples = data.load_splits(data_cfg, seed, splits=(args.split,))[args.split]
    examples = examples[:args.limit] if args.limit else examples
    if not examples:
        raise MinisummError(f"No examples to evaluate in {args.data or data_cfg.data} ({args.split}).")
    return examples


def _loss(model, tokenizer, examples, data_cfg, prefix, args, device, precision) -> dict:
    """The training loss on these examples (summary tokens + EOS, averaged over tokens) and its perplexity."""
    encoded = batching.encode_examples(tokenizer, examples, data_cfg, prefix)
    order = batching.batch_order([len(e["input_ids"]) for e in encoded], args.batch_size, seed=0, epoch=0,
                                 shuffle=False, group_by_length=False)
    batches = (batching.collate([encoded[i] for i in ids], tokenizer.eos_token_id) for ids in order)
    with _progress_bar(args, "loss", "batch", len(order), batches) as bar:
        label_loss = speedups.label_loss if args.speedups else loss.label_loss  # the same sum and count
        result = loss.evaluation_loss(model, bar, device, precision, label_loss)
    return {"loss": result["loss"], "perplexity": result["perplexity"], "loss_tokens": result["tokens"]}


def _write(out: Path, results: dict, examples, predictions) -> None:
    """predictions.jsonl, then metrics.json, each atomically; if `out` fails (a full disk), both go to a new
    temporary folder that the error names, so the decoding is never lost."""
    lines = "".join(json_files.dumps({"id": e.id, "reference": e.summary, "prediction": p}) + "\n"
                    for e, p in zip(examples, predictions))
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "predictions.jsonl", lines)
        write_json(out / "metrics.json", results)
    except WRITE_ERRORS as error:
        reason = f"Could not write the results in {out} ({getattr(error, 'strerror', None) or error})"
        with writing("the results anywhere", f"{reason} and the temporary folder failed too"):
            rescue = Path(tempfile.mkdtemp(prefix="minisumm-eval-"))
            write_text(rescue / "predictions.jsonl", lines)
            write_json(rescue / "metrics.json", results)
        raise MinisummError(f"{reason}; the predictions and metrics were saved in {rescue} instead.") from None


def table(results: dict) -> str:
    rows = [f"{'examples':<12}{results['examples']}"]
    if "loss" in results:
        rows.append(f"{'loss':<12}{results['loss']:.4f}  (perplexity {results['perplexity']:.2f})")
    for key in ROUGE_TYPES:
        r = results["rouge"][key]
        interval = f"  [{r['low']:.2f}, {r['high']:.2f}]" if r["low"] is not None else ""
        rows.append(f"{key:<12}{r['mid']:.2f}{interval}")
    facts = results["facts"]
    if facts["copy_precision"] is not None:
        rows.append(f"{'copied':<12}{100 * facts['copy_precision']:.1f}% of {facts['mentions']:,} names and numbers "
                    f"occur in their article (copy precision)")
    if facts.get("fact_recall") is not None:
        rows.append(f"{'facts':<12}{100 * facts['fact_recall']:.1f}% of {facts['reference_facts']:,} reference "
                    f"facts stated (fact recall)")
    if facts.get("invented_facts") is not None:
        rows.append(f"{'invented':<12}{100 * facts['invented_facts']:.1f}% of {facts['prediction_facts']:,} "
                    f"predicted facts are not in the article")
    if "loss" in results:  # a model was decoded (lead-3 takes no time worth a row)
        rate = results["examples"] / max(results["decode_time_s"], 1e-9)
        rows.append(f"{'decoding':<12}{results['decode_time_s']:.1f} s ({rate:.1f} summaries/s)")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
