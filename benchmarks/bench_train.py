"""Training speed and peak memory: minisumm's label-only loss against the naive full-logits loss.

Both losses train the same model (same seeded weights, same method applied, same AdamW from
`minisumm.training.make_optimizer`, clipping at 1.0, same autocast/GradScaler handling as the trainer) on
the same synthetic batch: B rows of A random article tokens (labels -100) followed by S random summary
tokens (labelled), no padding. minisumm's model is set up the trainer's way
(`minisumm.speedups.prepare_for_training`: block attention, fused GELU, its activation checkpointing),
the reference's the usual way (transformers' SDPA attention and GELU; its stock
`activation_checkpointing_enable({"use_reentrant": False})`). The difference is the forward pass and loss:

    minisumm   minisumm.speedups.label_loss: the last block and the LM head at the S labelled positions
               only, loss = sum / count; GPT-2's GELU fused; on CPU with dropout, attention in causal blocks
               (minisumm/speedups/block_attention.py)
    reference  transformers' own `model(input_ids, attention_mask, labels).loss`: logits at every position,
               a B × T × 50,257 tensor (a soft prompt goes in as inputs_embeds, its labels -100; a prefix
               as the cache GPT-2 is given, PEFT's way: P ones in front of the mask, the text at P, P+1, ...)

How it runs, in one process, with two identical models (one per loss) built from the same seed:
1. check: each loss and its gradient norm on the fresh weights with dropout off (minisumm draws dropout
   masks only where it computes, so masks cannot match); they agree to float precision (`loss_diff`,
   `grad_norm_rel_diff`), so both do the same training;
2. `--warmup-steps` untimed optimizer steps of each (AdamW's state gets allocated, glibc warms up);
3. `--steps` timed optimizer steps of each, alternating in ABBA order (reference, minisumm, minisumm,
   reference, ...), so a slow spell of a shared machine or a drift hits both alike;
4. peak memory, each loss alone (on CPU in a fresh child process, so that neither inherits the other's
   heap; on CUDA in this process, whose allocator counters are exact): build, `--warmup-steps` steps (at
   least one: AdamW's state exists), then one measured step. Before it
   the peak is reset and glibc is in its "exact" mode (see `_common.py`; the timed steps run in glibc's
   usual fast mode, which would inflate the peak).
ms/step is the median of the timed steps; tokens/s = B·(A+S) / that; `speedup_median_of_pairs` is the
median of reference/minisumm time ratios of adjacent steps (steadier when the machine's load changes).
With prompt or prefix tuning, A shrinks by the P positions they take when P+A+S would pass the model's 1,024
(as the data pipeline cuts articles). The baseline memory is each child with its model built (no gradients or
optimizer state yet); peaks are reported whole and above it.

    python benchmarks/bench_train.py --method lora --batch-size 2 --article-tokens 944 --summary-tokens 80 \\
        --steps 3 --json benchmarks/results/train-cpu.json

`--json FILE` adds the row to FILE (replacing a row with the same method, shape, precision, device,
checkpointing and model) and, where both exist, compares a checkpointed minisumm row's peak with the
reference's peak *without* checkpointing. Peak memory is explained in `benchmarks/_common.py`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (a sibling file, not a package)

import torch  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from minisumm import methods  # noqa: E402
from minisumm.tools.atomic import write_json  # noqa: E402
from minisumm.config import METHODS, MethodConfig, RunConfig, TrainConfig  # noqa: E402
from minisumm.device import autocast, resolve_device, resolve_precision  # noqa: E402
from minisumm.errors import MinisummError  # noqa: E402
from minisumm.batching import IGNORE_INDEX, label_slots  # noqa: E402
from minisumm.speedups.labelled_positions import label_loss  # noqa: E402
from minisumm.model import set_dropout  # noqa: E402
from minisumm.tools.loading import load_model_and_tokenizer  # noqa: E402
from minisumm.training import make_optimizer  # noqa: E402
from minisumm.speedups import prepare_for_training  # noqa: E402

PHASES = ("reference", "minisumm")
GPT2_CONFIG = "GPT2Config()"  # the model name used when ../shared/gpt2 is absent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--article-tokens", type=int, default=944, help="Unlabelled tokens per row (A).")
    parser.add_argument("--summary-tokens", type=int, default=80, help="Labelled tokens per row (S).")
    parser.add_argument("--steps", type=int, default=3, help="Timed optimizer steps per phase.")
    parser.add_argument("--warmup-steps", type=int, default=1, help="Untimed optimizer steps first.")
    parser.add_argument("--model", default=None, help=f"Model for load_model_and_tokenizer (default: "
                        f"{_common.SHARED_GPT2} with random weights, or {GPT2_CONFIG} when that is absent).")
    parser.add_argument("--random-init", action="store_true", help="Random weights (for folders without weights).")
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--dropout", type=float, default=None, help="GPT-2's dropout, as train.py's --dropout "
                        "(default: the model's own, 0.1).")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto.")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="Add the result row to this JSON file.")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # internal: one loss's peak in a child
    parser.add_argument("--phase-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.model is None:
        args.model, args.random_init = (str(_common.SHARED_GPT2), True) if _common.SHARED_GPT2.is_dir() \
            else (GPT2_CONFIG, False)
    if min(args.batch_size, args.article_tokens, args.summary_tokens, args.steps) < 1:
        parser.error("--batch-size, --article-tokens, --summary-tokens, and --steps must be at least 1")
    return args


def build(args, device: torch.device, phase: str):
    """A fresh model (seeded weights) with the method applied, on `device`, in training mode.

    minisumm's side is set up as the trainer does (`minisumm.speedups.prepare_for_training`); the reference
    gets transformers' stock checkpointing call with `use_reentrant=False` when asked.
    """
    torch.manual_seed(args.seed)
    if args.model == GPT2_CONFIG:
        model = GPT2LMHeadModel(GPT2Config())
    else:
        model, _ = load_model_and_tokenizer(args.model, random_init=args.random_init)
    if args.dropout is not None:
        set_dropout(model, args.dropout)  # before the method, as minisumm.model.build does
    # "vocab" init needs no tokenizer, so every model source gets the same kind of soft prompt
    method_config = MethodConfig(method=args.method, prompt_init="vocab")
    params = methods.apply(model, method_config)
    model.to(device).train()
    if phase == "minisumm":
        prepare_for_training(model, args.grad_checkpointing)  # what the trainer does
    elif args.grad_checkpointing:
        model.activation_checkpointing_enable({"use_reentrant": False})
        if getattr(model, "prefix", None) is not None:  # GPT2Model would hand its blocks no cache, no prefix
            model.transformer.gradient_checkpointing = False
    run_config = RunConfig(method=method_config, train=TrainConfig(max_grad_norm=1.0))
    return model, params, make_optimizer(params, run_config, device)


def article_room(args, model) -> int:
    """Article tokens that fit: a soft prompt or prefix takes P of the model's positions, so the article shrinks
    by P (as the data pipeline cuts it)."""
    prefix = getattr(getattr(model, "soft_prompt", None) or getattr(model, "prefix", None), "length", 0)
    return min(args.article_tokens, model.config.n_positions - prefix - args.summary_tokens)


def synthetic_batch(args, model, device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(args.seed)
    article = article_room(args, model)
    input_ids = torch.randint(0, model.config.vocab_size, (args.batch_size, article + args.summary_tokens),
                              generator=generator)  # (B, T)
    labels = input_ids.clone()
    labels[:, :article] = IGNORE_INDEX  # the article is context only, as in real batches
    return {"input_ids": input_ids.to(device), "attention_mask": torch.ones_like(input_ids).to(device),
            "labels": labels.to(device), "label_slots": torch.from_numpy(label_slots(labels.numpy())).to(device)}


def minisumm_loss(model, batch) -> torch.Tensor:
    """As the trainer calls it: no attention mask (right padding), the label slots from collation."""
    loss_sum, count = label_loss(model, batch["input_ids"], None, batch["labels"], batch["label_slots"])
    return loss_sum / count


def reference_loss(model, batch) -> torch.Tensor:
    """transformers' loss over every position: the B × T × V logits are formed, the way most scripts train."""
    soft_prompt, prefix = getattr(model, "soft_prompt", None), getattr(model, "prefix", None)
    if prefix is not None:
        mask = batch["attention_mask"]
        full_mask = torch.cat([mask.new_ones(mask.shape[0], prefix.length), mask], 1)  # (B, P+T)
        positions = torch.arange(prefix.length, full_mask.shape[1], device=mask.device)[None]  # (1, T): P, P+1, ...
        return model(input_ids=batch["input_ids"], attention_mask=full_mask, position_ids=positions,
                     cache=prefix.cache(mask.shape[0]), labels=batch["labels"]).loss
    if soft_prompt is None:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    embeds, mask = soft_prompt.prepend(model.transformer.wte(batch["input_ids"]), batch["attention_mask"])
    labels = batch["labels"]
    prompt_labels = labels.new_full((labels.shape[0], soft_prompt.length), IGNORE_INDEX)  # (B, P)
    return model(inputs_embeds=embeds, attention_mask=mask, labels=torch.cat([prompt_labels, labels], 1)).loss


LOSSES = {"reference": reference_loss, "minisumm": minisumm_loss}


class Bench:
    """One loss's model, optimizer and batch; `step()` is one optimizer step as the trainer takes it."""

    def __init__(self, args, device: torch.device, precision: str, phase: str, allocator: str = "fast"):
        self.args, self.device, self.precision, self.loss_fn = args, device, precision, LOSSES[phase]
        self.allocator = allocator
        _common.allocator_mode(allocator)
        self.model, self.params, self.optimizer = build(args, device, phase)
        self.batch = synthetic_batch(args, self.model, device)
        self.article_tokens = article_room(args, self.model)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        _common.reset_peak(device)
        self.baseline_mb = _common.current_mb(device)  # weights built, no gradients or optimizer state yet

    def backward(self, seed: int) -> float:
        torch.manual_seed(seed)  # both losses' steps draw from the same random stream
        with autocast(self.device, self.precision):
            loss = self.loss_fn(self.model, self.batch)
        self.scaler.scale(loss).backward()
        return float(loss.detach())  # waits for the device, like the trainer's logging does

    def step(self, seed: int) -> float:
        loss = self.backward(seed)
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    def timed_step(self, seed: int) -> tuple[float, float, float, int]:
        """Wall seconds, user and system CPU seconds, minor page faults (the process's, all threads) of a step."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        self.step(seed)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
        return (wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime,
                after.ru_minflt - before.ru_minflt)

    def loss_and_grad_norm(self) -> tuple[float, float]:
        """Loss and gradient norm with dropout off (eval mode), on the current weights."""
        self.model.eval()
        loss = self.backward(self.args.seed)
        self.model.train()
        grads = [p.grad.float() for p in self.params if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
        self.optimizer.zero_grad(set_to_none=True)
        return loss, norm

    def peak_step(self, seed: int) -> float:
        """Peak memory of one step (AdamW's state already allocated), glibc in its exact mode."""
        _common.reset_peak(self.device)
        _common.allocator_mode("exact")
        self.step(seed)
        peak = _common.peak_mb(self.device)
        _common.allocator_mode(self.allocator)
        return peak


def measure(args, device: torch.device, precision: str, argv: list[str]) -> dict:
    """Check, warm up, time both losses in ABBA order; then each loss's peak memory in a child process."""
    benches = {phase: Bench(args, device, precision, phase) for phase in PHASES}
    (ref_loss, ref_norm), (loss, norm) = (benches[phase].loss_and_grad_norm() for phase in PHASES)
    result = {"check": {"reference_loss": ref_loss, "loss": loss, "loss_diff": abs(loss - ref_loss),
                        "reference_grad_norm": ref_norm, "grad_norm": norm,
                        "grad_norm_rel_diff": abs(norm - ref_norm) / ref_norm},
              "article_tokens_used": benches["minisumm"].article_tokens}
    seed = args.seed + 1
    for _ in range(args.warmup_steps):
        for phase in PHASES:
            benches[phase].step(seed)
            seed += 1
    timed = {phase: [] for phase in PHASES}
    for index in range(args.steps):
        # ABBA: reference, minisumm, minisumm, reference, ... so a slow spell or a drift hits both alike
        for phase in (PHASES if index % 2 == 0 else PHASES[::-1]):
            timed[phase].append(benches[phase].timed_step(seed))
            seed += 1
    result["step_s"] = {phase: [t[0] for t in steps] for phase, steps in timed.items()}
    for index, name in enumerate(("user_s", "sys_s", "page_faults"), start=1):
        result[name] = {phase: [t[index] for t in steps] for phase, steps in timed.items()}
    del benches
    _common.release_freed_memory()
    if device.type == "cuda":  # the caching allocator's counters are exact: this process will do
        result["memory"] = {phase: peak_alone(args, device, precision, phase) for phase in PHASES}
    else:  # a CPU process's resident set keeps the heap of what ran before: a fresh process per loss
        result["memory"] = {phase: run_in_child(phase, argv) for phase in PHASES}
    return result


def run_in_child(phase: str, argv: list[str]) -> dict:
    """One loss's peak memory, measured alone in a fresh process (`peak_alone`)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "peak.json"
        subprocess.run([sys.executable, __file__, *argv, "--phase", phase, "--phase-out", str(out)], check=True)
        return json.loads(out.read_text())


def peak_alone(args, device: torch.device, precision: str, phase: str) -> dict:
    """Build one loss's model, warm up (AdamW's state gets allocated), then the peak of one more step.

    glibc stays in its exact mode throughout: warm-up steps in the fast mode would leave large free chunks
    in the heap that the measured step then reuses, and keeps resident after freeing them."""
    memory = _common.check_peak_reset(device)
    bench = Bench(args, device, precision, phase, allocator="exact")
    warmup = max(1, args.warmup_steps)
    for index in range(warmup):
        bench.step(args.seed + index)
    if memory["reliable"]:
        peak = bench.peak_step(args.seed + warmup)
        memory["method"] = ("one fresh process per loss; " if device.type == "cpu" else "") + memory["method"]
    else:
        bench.step(args.seed + warmup)
        peak = _common.peak_mb(device)
        memory["method"] = "lifetime peak of the child process (resetting the peak failed its check)"
    return {"peak_mb": peak, "baseline_mb": bench.baseline_mb, "memory": memory}


def summarise(args, device, precision, result: dict) -> dict:
    tokens = args.batch_size * (result["article_tokens_used"] + args.summary_tokens)
    row = {"method": args.method, "batch_size": args.batch_size, "article_tokens": args.article_tokens,
           "article_tokens_used": result["article_tokens_used"],
           "summary_tokens": args.summary_tokens, "grad_checkpointing": args.grad_checkpointing,
           "dropout": args.dropout, "precision": precision, "device": str(device), "model": args.model,
           "random_init": args.random_init,
           "steps": args.steps, "warmup_steps": args.warmup_steps,
           "order": "two identical models, one per loss; timed steps alternate in ABBA order",
           "statistic": "median ms/step of the timed steps", "memory": result["memory"]["minisumm"]["memory"],
           "date": date.today().isoformat(), **_common.machine_info(device), **result["check"]}
    for phase in PHASES:
        prefix = "" if phase == "minisumm" else "reference_"
        median = statistics.median(result["step_s"][phase])
        row[prefix + "ms_per_step"] = 1000 * median
        row[prefix + "step_ms_all"] = [round(1000 * t, 1) for t in result["step_s"][phase]]
        row[prefix + "tokens_per_s"] = tokens / median
        row[prefix + "user_s_per_step"] = statistics.median(result["user_s"][phase])  # CPU time, all threads
        row[prefix + "sys_s_per_step"] = statistics.median(result["sys_s"][phase])  # kernel time: page faults
        row[prefix + "page_faults_per_step"] = statistics.median(result["page_faults"][phase])
        memory = result["memory"][phase]
        row[prefix + "peak_mem_mb"] = memory["peak_mb"]
        row[prefix + "baseline_mem_mb"] = memory["baseline_mb"]
        row[prefix + "peak_above_baseline_mb"] = memory["peak_mb"] - memory["baseline_mb"]
    row["speedup"] = row["tokens_per_s"] / row["reference_tokens_per_s"]
    # per timed pair (adjacent steps of the two losses): robust to a load that changes between pairs
    pairs = [r / m for r, m in zip(result["step_s"]["reference"], result["step_s"]["minisumm"])]
    row["speedup_per_pair"] = [round(p, 3) for p in pairs]
    row["speedup_median_of_pairs"] = statistics.median(pairs)
    row["peak_mem_ratio"] = row["peak_mem_mb"] / row["reference_peak_mem_mb"]
    row["peak_above_baseline_ratio"] = row["peak_above_baseline_mb"] / max(row["reference_peak_above_baseline_mb"], 1)
    return row


ROW_KEY = ("method", "batch_size", "article_tokens", "summary_tokens", "grad_checkpointing", "dropout", "precision",
           "device", "model")


def read_results(path: Path) -> dict:
    """The results file's contents ({} when it does not exist yet); MinisummError when it is not one."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MinisummError(f"--json {path} cannot be read as JSON ({error}); give a bench_train results file "
                            f"or a new path.") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows", []), list):
        raise MinisummError(f"--json {path} is not a bench_train results file (no list of rows); give one, "
                            f"or a new path.")
    return data


def add_row(path: Path, row: dict) -> dict:
    """Upsert `row` into the file's rows; compare checkpointed minisumm with the plain reference where possible.

    The file is replaced atomically, so an interrupted write never leaves earlier rows half-written."""
    data = read_results(path)
    rows = [r for r in data.get("rows", []) if any(r.get(k) != row[k] for k in ROW_KEY)] + [row]
    for ckpt in (r for r in rows if r["grad_checkpointing"]):
        plain = next((r for r in rows if not r["grad_checkpointing"]
                      and all(r.get(k) == ckpt.get(k) for k in ROW_KEY if k != "grad_checkpointing")), None)
        if plain is not None:
            ckpt["reference_without_checkpointing_peak_mem_mb"] = plain["reference_peak_mem_mb"]
            ckpt["peak_mem_ratio_vs_reference_without_checkpointing"] = \
                ckpt["peak_mem_mb"] / plain["reference_peak_mem_mb"]
    data["rows"] = rows
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)
    return next(r for r in rows if all(r.get(k) == row[k] for k in ROW_KEY))


def report(row: dict) -> None:
    cut = f" (cut from {row['article_tokens']} to fit the model's positions)" \
        if row["article_tokens_used"] < row["article_tokens"] else ""
    print(f"{row['method']} B={row['batch_size']} A={row['article_tokens_used']}{cut} S={row['summary_tokens']} "
          f"{row['precision']} on {row['device']}{' + grad checkpointing' if row['grad_checkpointing'] else ''} "
          f"({row['torch_threads']} threads, {row['cpu_model']})")
    print(f"{'':10} {'ms/step':>9} {'tokens/s':>9} {'peak MB':>9} {'above base':>10}")
    for name, prefix in (("reference", "reference_"), ("minisumm", "")):
        print(f"{name:10} {row[prefix + 'ms_per_step']:9.0f} {row[prefix + 'tokens_per_s']:9.1f} "
              f"{row[prefix + 'peak_mem_mb']:9.0f} {row[prefix + 'peak_above_baseline_mb']:10.0f}")
    print(f"speedup {row['speedup']:.2f}x (median of per-pair ratios {row['speedup_median_of_pairs']:.2f}x); "
          f"peak memory {row['peak_mem_ratio']:.0%} of the reference's ({row['peak_above_baseline_ratio']:.0%} "
          f"above baseline); same weights: loss difference "
          f"{row['loss_diff']:.1e}, gradient norms differ by {row['grad_norm_rel_diff']:.1e} (relative)")
    print(f"CPU time per step (all threads): reference user {row['reference_user_s_per_step']:.1f} s, minisumm "
          f"user {row['user_s_per_step']:.1f} s (user-time ratio "
          f"{row['reference_user_s_per_step'] / max(row['user_s_per_step'], 1e-9):.2f}x)")
    print(f"kernel (system) time per step: reference {row['reference_sys_s_per_step']:.2f} s with "
          f"{row['reference_page_faults_per_step']:,.0f} page faults, minisumm {row['sys_s_per_step']:.2f} s with "
          f"{row['page_faults_per_step']:,.0f}")
    if "peak_mem_ratio_vs_reference_without_checkpointing" in row:
        print(f"checkpointed minisumm peak = {row['peak_mem_ratio_vs_reference_without_checkpointing']:.0%} "
              f"of the reference's peak without checkpointing")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    if args.phase:  # a child measuring one loss's peak memory alone (CPU; see `measure`)
        Path(args.phase_out).write_text(json.dumps(peak_alone(args, device, precision, args.phase)))
        return 0
    if args.json:
        read_results(Path(args.json))  # a file that cannot take the row fails now, not after the measuring
    row = summarise(args, device, precision, measure(args, device, precision, argv))
    if args.json:
        row = add_row(Path(args.json), row)
    report(row)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except MinisummError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
