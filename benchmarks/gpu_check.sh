#!/usr/bin/env bash
# One prepared check of minisumm on a CUDA machine (one H100/H200), about 5-8 minutes, no internet needed.
#
#   bash benchmarks/gpu_check.sh                # in the repository root of the GPU machine
#
# 1. Fails loudly (exit 1) when torch cannot see a GPU: it never falls back to the CPU.
# 2. Makes minisumm importable without touching torch (pip install --no-deps -e ., other deps only if missing).
# 3. Short runs first, as they can crash where the benchmarks cannot: per method, 20 bf16 training steps under
#    `torchrun --nproc_per_node=1` (a process group of one: NCCL, the DDP wrapper, rank-0 writing and the
#    collectives exactly as on eight GPUs) on GPT-2 small's architecture with random weights and the shipped
#    sample data, then evaluate.py on 16 examples (bf16 decoding); one fp16 run (GradScaler) without
#    torchrun; with two or more GPUs, one run under `--nproc_per_node=2`. Then every run folder is checked
#    (summary, process group, world size, best/ and last/, the evaluation's metrics).
# 4. What a user feels, before the rest as the budget may cut the last steps: per method, bf16 training tokens/s and
#    MFU (minisumm.mfu) on batches of CNN/DM's shape with its padding (lengths drawn like CNN/DM's, grouped by length
#    as the trainer groups them); evaluate.py's wall time on 3,000 articles of CNN/DM's lengths (sample-data
#    English, GPT-2's architecture with random weights).
# 5. Training speed/memory (benchmarks/bench_train.py) for every method in bf16 and fp16 (the GradScaler
#    path) at B=8, A=944, S=80 on GPT-2 small's architecture (random weights), against transformers' own loss.
# 6. Decoding speed (benchmarks/bench_generate.py; its flags are read from its --help at run time).
# Every step has its own timeout and its log; one JSON collects everything: ${OUT:-benchmarks/results}/gpu_check.json
# (runs, logs and caches go to $OUT when set, else to ${TMPDIR:-/tmp}/minisumm-gpu-check). Exit 1 if any step failed.
#
# ALLOW_CPU=1 (or --dry-run) exists ONLY to test this script itself: it runs the same steps at tiny sizes on
# the CPU (bf16/fp32; torchrun with gloo, and with 2 processes). Its numbers mean nothing.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
[[ "${1:-}" == "--dry-run" || "${ALLOW_CPU:-0}" == "1" ]] && DRY=1
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
RESULTS="${OUT:-benchmarks/results}"
WORK="${OUT:-${TMPDIR:-/tmp}/minisumm-gpu-check}"
BUDGET_S="${BUDGET_S:-$([[ $DRY == 1 ]] && echo 3600 || echo 450)}"  # later steps are skipped (and reported) past this
TIMEOUT_SCALE="${TIMEOUT_SCALE:-$([[ $DRY == 1 ]] && echo 5 || echo 1)}"  # a shared CPU is slow even at tiny sizes
mkdir -p "$RESULTS" "$WORK/logs" "$WORK/parts" "$WORK/runs"
rm -f "$WORK/steps.tsv" "$WORK/parts/"*.json
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # minisumm importable even if pip cannot install it
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONWARNINGS=ignore
START=$SECONDS

die() { echo "gpu_check: FAIL: $*" >&2; exit 1; }

# --- 1. torch, and a GPU -------------------------------------------------------------------------------------
[[ -n "$PYTHON" ]] || die "no python on PATH."
"$PYTHON" -c "import torch" 2>/dev/null || die "'import torch' fails with $PYTHON; install torch with CUDA first (no internet here)."
if [[ $DRY == 1 ]]; then
    echo "gpu_check: DRY RUN on the CPU at tiny sizes (ALLOW_CPU=1 / --dry-run): tests this script, measures nothing."
    DEVICE=cpu
else
    "$PYTHON" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null \
        || die "torch $("$PYTHON" -c 'import torch; print(torch.__version__)') sees no CUDA GPU; this check does not fall back to the CPU."
    DEVICE=cuda
fi
GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)

# --- 2. minisumm and its dependencies, torch untouched ---------------------------------------------------------
if ! (cd / && "$PYTHON" -c "import minisumm") 2>/dev/null; then
    "$PYTHON" -m pip install --no-deps --no-build-isolation -e . > "$WORK/logs/pip-minisumm.log" 2>&1 \
        || echo "gpu_check: pip install -e . failed (see $WORK/logs/pip-minisumm.log); using PYTHONPATH instead."
fi
for pair in transformers:transformers datasets:datasets rouge_score:rouge-score tqdm:tqdm safetensors:safetensors; do
    module=${pair%%:*} package=${pair##*:}
    "$PYTHON" -c "import $module" 2>/dev/null && continue
    echo "gpu_check: installing missing $package"
    "$PYTHON" -m pip install "$package" >> "$WORK/logs/pip-deps.log" 2>&1
    "$PYTHON" -c "import $module" 2>/dev/null || die "$package is missing and could not be installed (see $WORK/logs/pip-deps.log)."
done
"$PYTHON" -c "import minisumm" || die "minisumm cannot be imported from $PWD."

# --- the steps ---------------------------------------------------------------------------------------------------
FAILED=0
step() {  # step NAME TIMEOUT_S COMMAND...: run with a timeout, log to logs/NAME.log, record in steps.tsv
    local name=$1 limit=$2; shift 2
    local elapsed=$((SECONDS - START)) rc command="$*"
    command=${command//[$'\t\n']/ }  # one line in steps.tsv
    if (( elapsed > BUDGET_S )); then
        printf '%s\tskipped\t0\t%s\n' "$name" "$command" >> "$WORK/steps.tsv"
        echo "gpu_check: $name skipped (time budget of ${BUDGET_S}s spent)"; FAILED=1; return
    fi
    local began=$SECONDS
    timeout --kill-after=10 "$((limit * TIMEOUT_SCALE))" "$@" > "$WORK/logs/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - began))" "$command" >> "$WORK/steps.tsv"
    if [[ $rc == 0 ]]; then echo "gpu_check: $name ok ($((SECONDS - began))s)"
    else echo "gpu_check: $name FAILED (exit $rc$([[ $rc == 124 ]] && echo ', timed out'); $WORK/logs/$name.log):"
         tail -n 5 "$WORK/logs/$name.log" | sed 's/^/    /'; FAILED=1; fi
}

METHODS="prompt lora last-layers full"
if [[ $DRY == 1 ]]; then
    SHAPE=(--model tiny-random --batch-size 2 --article-tokens 60 --summary-tokens 10 --steps 1 --warmup-steps 1)
    PRECISIONS="bf16 fp32"; TRAIN_STEPS=2; EVAL_LIMIT=2; EVAL_EXTRA=(--max-new-tokens 16); FP16=fp32
    GEN_SIZE=(--model tiny-random --batch-size 2 --prompt-tokens 32 --new-tokens 8)
    FEEL=(--model tiny-random); FEEL_EXAMPLES=8; FEEL_STEPS=2
    RUN_MODEL=(--model tiny-random); BACKEND=gloo; PAIR=2  # gloo runs 2 processes on one CPU
else
    SHAPE=(--batch-size 8 --article-tokens 944 --summary-tokens 80 --steps 5 --warmup-steps 2)
    PRECISIONS="bf16 fp16"; TRAIN_STEPS=20; EVAL_LIMIT=16; EVAL_EXTRA=(); FP16=fp16
    if [[ -d ../shared/gpt2 ]]; then
        GEN_SIZE=(--model ../shared/gpt2 --random-init)
    else  # GPT-2 small's architecture (GPT2Config()) with a byte-level tokenizer: no files or internet needed
        "$PYTHON" -c "import sys; from transformers import GPT2Config; from minisumm.tools.loading import byte_level_tokenizer
GPT2Config().save_pretrained(sys.argv[1]); byte_level_tokenizer().save_pretrained(sys.argv[1])" "$WORK/gpt2-config"
        GEN_SIZE=(--model "$WORK/gpt2-config" --random-init)
    fi
    RUN_MODEL=("${GEN_SIZE[@]}"); BACKEND=nccl; PAIR=$(( GPUS >= 2 ? 2 : 0 ))
    FEEL=(); FEEL_EXAMPLES=3000; FEEL_STEPS=20  # bench_train's default model: GPT-2 small's architecture
    GEN_SIZE+=(--batch-size 8 --prompt-tokens 512 --new-tokens 64)
fi
TORCHRUN=("$PYTHON" -m torch.distributed.run --standalone)
RUN_FLAGS=(--data sample --max-steps "$TRAIN_STEPS" --device "$DEVICE" --no-progress --overwrite --cache-dir "$WORK/cache")
rm -rf "$WORK/runs/"*  # a run folder left from an earlier check would be checked as if it were new

step environment 60 "$PYTHON" -c "import json, torch, transformers, platform, sys
info = {'python': platform.python_version(), 'torch': torch.__version__, 'cuda': torch.version.cuda,
        'transformers': transformers.__version__, 'cuda_available': torch.cuda.is_available()}
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
json.dump(info, open(sys.argv[1], 'w'))" "$WORK/parts/environment.json"

# --- short runs: torchrun (a process group even with one process), then the run folders checked ---------------
for method in $METHODS; do
    step "train-$method-bf16" 150 "${TORCHRUN[@]}" --nproc_per_node=1 train.py --method "$method" "${RUN_MODEL[@]}" \
        --precision bf16 "${RUN_FLAGS[@]}" --out "$WORK/runs/$method"
    step "evaluate-$method" 150 "$PYTHON" evaluate.py "$WORK/runs/$method" --limit "$EVAL_LIMIT" --device "$DEVICE" \
        --precision bf16 "${EVAL_EXTRA[@]}"
done
step "train-lora-$FP16" 150 "$PYTHON" train.py --method lora "${RUN_MODEL[@]}" --precision "$FP16" "${RUN_FLAGS[@]}" \
    --out "$WORK/runs/lora-$FP16"
if (( PAIR == 2 )); then
    step "train-lora-bf16-2proc" 150 "${TORCHRUN[@]}" --nproc_per_node=2 train.py --method lora "${RUN_MODEL[@]}" \
        --precision bf16 "${RUN_FLAGS[@]}" --out "$WORK/runs/lora-bf16-2proc"
fi
step check-runs 30 "$PYTHON" - "$WORK/runs" "$TRAIN_STEPS" "$BACKEND" "lora-$FP16" <<'PY'
import json, math, sys
from pathlib import Path
runs, steps, backend, plain = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
problems = []
for run in sorted(runs.iterdir()):
    launched = run.name != plain  # every run but one went through torchrun
    world = 2 if run.name.endswith("-2proc") else 1
    try:
        summary = json.loads((run / "summary.json").read_text())
        start = next(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                     if json.loads(line)["type"] == "start")
    except (OSError, ValueError, StopIteration) as error:
        problems.append(f"{run.name}: no summary or start record ({error})")
        continue
    expected = {"steps": steps, "world_size": world}
    problems += [f"{run.name}: {key} {summary.get(key)} != {value}" for key, value in expected.items()
                 if summary.get(key) != value]
    if start.get("process_group") != (backend if launched else None):
        problems.append(f"{run.name}: process group {start.get('process_group')}, expected {backend if launched else None}")
    if not math.isfinite(summary.get("best_val_loss", math.nan)):
        problems.append(f"{run.name}: best_val_loss {summary.get('best_val_loss')}")
    problems += [f"{run.name}: no {folder}/" for folder in ("best", "last") if not (run / folder).is_dir()]
    if not run.name.startswith("lora-"):  # the per-method runs were evaluated
        try:
            metrics = json.loads((run / "eval" / "metrics.json").read_text())
            assert math.isfinite(metrics["loss"]) and metrics["decode_peak_memory_mb"] > 0 and "rouge" in metrics
        except (OSError, ValueError, KeyError, AssertionError) as error:
            problems.append(f"{run.name}: eval/metrics.json incomplete ({error!r})")
    print(f"{run.name}: steps {summary.get('steps')}, world size {summary.get('world_size')}, "
          f"process group {start.get('process_group')}, best val loss {summary.get('best_val_loss')}")
print("\n".join(problems) or "every run folder as expected")
sys.exit(1 if problems else 0)
PY

# --- what a user feels: training at CNN/DM's lengths with MFU, evaluate.py on 3,000 CNN/DM-length articles --------
step train_feel 240 "$PYTHON" - "$DEVICE" "$WORK/parts/train_feel.json" "$FEEL_STEPS" "$METHODS" "${FEEL[@]}" <<'PY'
"""Per method: bf16 optimizer steps as the trainer takes them (minisumm's label loss, AdamW, clipping) on batches of
8 whose rows have CNN/DM's lengths in GPT-2 tokens (articles log-normal around a mean of ~800, cut to fit
1,024 positions with the summary; highlights mean 63, p90 ~92), sorted by length in mega-batches of 64 as
--group-by-length does, so the padding is what a real epoch has. Tokens/s counts real tokens; MFU counts each
row's model FLOPs (minisumm.mfu) over the GPU's dense bf16 peak."""
import json, random, sys, time
import torch
sys.path.insert(0, "benchmarks")
import bench_train
from minisumm import mfu
from minisumm.batching import IGNORE_INDEX
from minisumm.device import autocast
from minisumm.speedups import label_loss
device_name, out, steps, method_names, model_flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5:]
device, rng, rows, warmup = torch.device(device_name), random.Random(0), 8, 3
results = {"what": __doc__, "gpu": mfu.device_name(device), "methods": {}}
for method in method_names:
    args = bench_train.parse_args(["--method", method, "--device", device_name, *model_flags])
    model, params, optimizer = bench_train.build(args, device, "minisumm")
    virtual = getattr(getattr(model, "soft_prompt", None) or getattr(model, "prefix", None), "length", 0)
    room = model.config.n_positions - virtual - 8  # a soft prompt's or prefix's P, and the separator, take positions
    lengths = []  # (article, summary) tokens of each row: the article is cut to fit, never the summary
    for _ in range(64):
        summary = max(8, min(128, round(rng.gauss(63, 23))))
        lengths.append((max(1, min(round(rng.lognormvariate(6.55, 0.5)), room - summary)), summary))
    lengths.sort(key=sum, reverse=True)  # one mega-batch of 64, sorted: batches of similar lengths
    batches = []
    for start in range(0, len(lengths), rows):
        chunk = lengths[start:start + rows]
        width = max(a + s for a, s in chunk)
        ids = torch.randint(0, model.config.vocab_size, (len(chunk), width))  # (B, T)
        mask, labels = torch.zeros_like(ids), torch.full_like(ids, IGNORE_INDEX)
        for r, (a, s) in enumerate(chunk):  # right padding, as batching.collate makes it
            mask[r, :a + s] = 1
            labels[r, a:a + s] = ids[r, a:a + s]
        batches.append({"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)})
    rates = mfu.training_rates(model, params)
    flops = [sum(rates.example(a + s, s) for a, s in lengths[i * rows:(i + 1) * rows]) for i in range(len(batches))]
    def step(batch):
        with autocast(device, "bf16"):
            loss_sum, count = label_loss(model, **batch)
        (loss_sum / count).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    order = [rng.randrange(len(batches)) for _ in range(warmup + steps)]
    for i in order[:warmup]:
        step(batches[i])
    if device.type == "cuda": torch.cuda.synchronize()
    began = time.perf_counter()
    for i in order[warmup:]:
        step(batches[i])
    if device.type == "cuda": torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    tokens = sum(int(batches[i]["attention_mask"].sum()) for i in order[warmup:])
    padded = sum(batches[i]["attention_mask"].numel() for i in order[warmup:])
    peak = mfu.peak_flops(results["gpu"], "bf16")
    results["methods"][method] = {
        "tokens_per_s": tokens / seconds, "padding_fraction": 1 - tokens / padded, "steps": steps,
        "model_flops_per_token": sum(flops[i] for i in order[warmup:]) / tokens,
        "mfu": sum(flops[i] for i in order[warmup:]) / seconds / peak if peak else None}
    del model, params, optimizer, batches
    if device.type == "cuda": torch.cuda.empty_cache()
json.dump(results, open(out, "w"), indent=1)
print(json.dumps(results["methods"]))
PY

# 3,000 articles of CNN/DM's lengths in plain English: the sample data's sentences, shuffled and cut to a length
# in tokens drawn as in train_feel; evaluate.py decodes them with the lora run's random GPT-2 (128 new tokens each:
# random weights rarely stop early, so this is the longest decoding a real model would do)
step evaluate_feel 300 "$PYTHON" - "$WORK/runs/lora" "$WORK/cnndm-like.jsonl" "$FEEL_EXAMPLES" "$WORK/parts/evaluate_feel.json" "$DEVICE" "$DRY" <<'PY'
import json, random, re, subprocess, sys, time
from pathlib import Path
from minisumm.tools.checkpoint import load_checkpoint
run, data, count, out, device, dry = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6] == "1"
_, tokenizer, _ = load_checkpoint(run)
sentences = [s for line in open("minisumm/sample_data/train.jsonl") for s in re.split(r"(?<=\.) ", json.loads(line)["article"])]
rng = random.Random(0)
pool = " ".join(rng.sample(sentences, min(len(sentences), 400)))
chars_per_token = len(pool) / len(tokenizer(pool)["input_ids"])
with open(data, "w") as file:
    for i in range(count):
        rng.shuffle(sentences)
        tokens = 60 if dry else min(round(rng.lognormvariate(6.55, 0.5)), 2000)
        text = " ".join(sentences[:200])
        while len(text) < tokens * chars_per_token:
            text += " " + text
        file.write(json.dumps({"id": f"feel-{i}", "article": text[:round(tokens * chars_per_token)],
                               "highlights": " ".join(sentences[200:203])}) + "\n")
command = [sys.executable, "evaluate.py", str(run), "--data", str(data), "--device", device, "--precision", "bf16",
           "--out", str(run / "eval-feel"), "--no-progress", *(["--max-new-tokens", "16"] if dry else [])]
began = time.perf_counter()
subprocess.run(command, check=True)
metrics = json.loads((run / "eval-feel" / "metrics.json").read_text())
result = {"examples": count, "wall_time_s": time.perf_counter() - began, "decode_time_s": metrics.get("decode_time_s"),
          "command": " ".join(command)}
json.dump(result, open(out, "w"))
print(json.dumps(result))
PY

for precision in $PRECISIONS; do
    for method in $METHODS; do
        step "bench_train-$method-$precision" 120 "$PYTHON" benchmarks/bench_train.py --method "$method" \
            --precision "$precision" --device "$DEVICE" "${SHAPE[@]}" --json "$WORK/parts/bench_train.json"
    done
done

# Would the labelled-positions label_loss gain from dropping the padding mask of right-padded batches? (A real token never
# attends to a later pad under the causal mask, so its outputs cannot change; without a 2-D mask transformers
# keeps SDPA's is_causal path, i.e. flash attention on GPUs.) Same losses expected, times compared.
step mask_probe 120 "$PYTHON" - "$DEVICE" "$WORK/parts/mask_probe.json" "$DRY" <<'PY'
import json, statistics, sys, time
import torch
sys.path.insert(0, "benchmarks")
import bench_train
from minisumm.device import autocast
from minisumm.speedups.labelled_positions import label_loss
device_name, out, dry = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
size = ["--model", "tiny-random", "--batch-size", "2", "--article-tokens", "60"] if dry else ["--batch-size", "8"]
args = bench_train.parse_args(["--method", "lora", "--device", device_name, *size])
device = torch.device(device_name)
model, params, _ = bench_train.build(args, device, "minisumm")
batch = bench_train.synthetic_batch(args, model, device)
for row in range(1, args.batch_size):  # right padding as batching.collate makes it: row r is 8r tokens shorter
    batch["attention_mask"][row, -8 * row:] = 0
    batch["labels"][row, -8 * row:] = -100
ones = dict(batch, attention_mask=torch.ones_like(batch["attention_mask"]))
def run(b):
    torch.manual_seed(0)
    with autocast(device, "bf16"):
        loss_sum, count = label_loss(model, **b)
    (loss_sum / count).backward()
    model.zero_grad(set_to_none=True)
    return float(loss_sum / count)
times = {"padding_mask": [], "ones_mask": []}
losses = {"padding_mask": run(batch), "ones_mask": run(ones)}
for i in range(10):
    for name in (("padding_mask", "ones_mask") if i % 2 == 0 else ("ones_mask", "padding_mask")):
        if device.type == "cuda": torch.cuda.synchronize()
        t = time.perf_counter(); run(batch if name == "padding_mask" else ones)
        if device.type == "cuda": torch.cuda.synchronize()
        times[name].append(time.perf_counter() - t)
result = {"what": "lora bf16 forward+backward of label_loss on a right-padded batch: real mask vs all-ones mask",
          "losses": losses, "ms": {k: 1000 * statistics.median(v) for k, v in times.items()}}
result["speedup_without_mask"] = result["ms"]["padding_mask"] / result["ms"]["ones_mask"]
json.dump(result, open(out, "w"))
print(json.dumps(result))
PY

"$PYTHON" benchmarks/bench_generate.py --help > "$WORK/logs/bench_generate-help.log" 2>&1
GEN_ARGS=()
for flag_value in "--device=$DEVICE" "--repeats=2" "--json=$WORK/parts/bench_generate.json"; do
    grep -q -- "${flag_value%%=*}" "$WORK/logs/bench_generate-help.log" && GEN_ARGS+=("${flag_value%%=*}" "${flag_value#*=}")
done
step bench_generate 150 "$PYTHON" benchmarks/bench_generate.py "${GEN_SIZE[@]}" "${GEN_ARGS[@]}"

# --- collect ------------------------------------------------------------------------------------------------------
"$PYTHON" - "$WORK" "$RESULTS/gpu_check.json" "$DRY" "$((SECONDS - START))" <<'PY'
import json, sys
from pathlib import Path

work, target, dry, seconds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None

steps = []
for line in (work / "steps.tsv").read_text().splitlines():
    name, rc, secs, command = line.split("\t", 3)
    log = work / "logs" / f"{name}.log"
    tail = log.read_text(errors="replace").splitlines()[-8:] if log.exists() else []
    steps.append({"name": name, "ok": rc == "0", "exit": rc, "seconds": int(secs), "command": command,
                  **({} if rc == "0" else {"log_tail": tail})})
runs = {}
for run in sorted((work / "runs").iterdir()) if (work / "runs").is_dir() else []:
    runs[run.name] = {"summary": load(run / "summary.json"), "eval": load(run / "eval" / "metrics.json")}
result = {"dry_run": dry, "seconds": seconds, "all_ok": all(s["ok"] for s in steps),
          "environment": load(work / "parts" / "environment.json"),
          "bench_train": (load(work / "parts" / "bench_train.json") or {}).get("rows", []),
          "bench_generate": load(work / "parts" / "bench_generate.json"),
          "mask_probe": load(work / "parts" / "mask_probe.json"), "train_feel": load(work / "parts" / "train_feel.json"),
          "evaluate_feel": load(work / "parts" / "evaluate_feel.json"), "runs": runs, "steps": steps}
target.parent.mkdir(parents=True, exist_ok=True)
target.write_text(json.dumps(result, indent=1) + "\n")

def number(value, spec):
    return format(value, spec) if isinstance(value, (int, float)) else "n/a"

def table(title, header, rows):
    """Print rows (lists of strings) under a title, columns padded to their widest cell."""
    if not rows:
        print(f"{title}: none")
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    print(f"\n{title}")
    for cells in [header, *rows]:
        print("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(cells, widths))))

print(f"\n=== gpu_check summary{' (DRY RUN: CPU, tiny sizes, numbers mean nothing)' if dry else ''} ===")
env = result["environment"] or {}
print(", ".join(f"{k} {v}" for k, v in env.items()) or "environment: n/a")
table("training step (bench_train): minisumm vs transformers' labels= loss",
      ["method", "precision", "tok/s", "ref tok/s", "speed-up", "peak MB", "ref MB", "loss diff"],
      [[r["method"], r["precision"], number(r.get("tokens_per_s"), ".0f"), number(r.get("reference_tokens_per_s"), ".0f"),
        number(r.get("speedup"), ".2f") + "x", number(r.get("peak_mem_mb"), ".0f"),
        number(r.get("reference_peak_mem_mb"), ".0f"), number(r.get("loss_diff"), ".1e")]
       for r in result["bench_train"]])
generate = (result["bench_generate"] or {}).get("methods", {})
table("decoding (bench_generate): minisumm vs transformers' generate, greedy",
      ["method", "tok/s", "ref tok/s", "speed-up", "same output"],
      [[name, number(g.get("tokens_per_s"), ".1f"), number(g.get("reference_tokens_per_s"), ".1f"),
        number(g.get("speedup"), ".2f") + "x", number(g.get("same_output_share"), ".0%")]
       for name, g in generate.items()])
probe = result["mask_probe"]
if probe:
    print(f"\nmask probe: {number(probe['ms']['padding_mask'], '.1f')} ms with the padding mask, "
          f"{number(probe['ms']['ones_mask'], '.1f')} ms without ({number(probe['speedup_without_mask'], '.2f')}x); "
          f"losses {probe['losses']['padding_mask']:.5f} / {probe['losses']['ones_mask']:.5f}")
table("short runs (train.py under torchrun but lora-fp16/fp32, + evaluate.py; sample data)",
      ["run", "precision", "world", "steps", "best val loss", "train tok/s", "peak MB", "eval loss", "ROUGE-Lsum", "decode s"],
      [[name, str((run["summary"] or {}).get("precision")), str((run["summary"] or {}).get("world_size")),
        str((run["summary"] or {}).get("steps")),
        number((run["summary"] or {}).get("best_val_loss"), ".3f"), number((run["summary"] or {}).get("tokens_per_s"), ".0f"),
        number((run["summary"] or {}).get("peak_memory_mb"), ".0f"), number((run["eval"] or {}).get("loss"), ".3f"),
        number((((run["eval"] or {}).get("rouge") or {}).get("rougeLsum") or {}).get("mean"), ".2f"),
        number((run["eval"] or {}).get("decode_time_s"), ".1f")]
       for name, run in runs.items()])
feel = (result["train_feel"] or {}).get("methods", {})
table("what a user feels: bf16 training at CNN/DM's lengths and padding",
      ["method", "tok/s", "MFU", "padding", "GFLOP/token"],
      [[name, number(f.get("tokens_per_s"), ".0f"), number(f.get("mfu"), ".1%"), number(f.get("padding_fraction"), ".1%"),
        number(f.get("model_flops_per_token", 0) / 1e9, ".2f")] for name, f in feel.items()])
if result["evaluate_feel"]:
    e = result["evaluate_feel"]
    print(f"\nevaluate.py on {e['examples']:,} CNN/DM-length articles: {number(e['wall_time_s'], '.1f')} s wall, "
          f"{number(e['decode_time_s'], '.1f')} s decoding")
bad = [s["name"] for s in steps if not s["ok"]]
print(f"steps: {len(steps) - len(bad)}/{len(steps)} ok{'; FAILED: ' + ', '.join(bad) if bad else ''}; "
      f"{seconds}s; wrote {target}")
PY
[[ $FAILED == 0 ]] || { echo "gpu_check: FAIL: some steps failed (listed above)" >&2; exit 1; }
echo "gpu_check: all steps passed"
