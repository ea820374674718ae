"""Decoding speed: minisumm's hand-written KV-cached greedy loop against transformers' `model.generate`.

Both decode the same left-padded batch of random prompts (lengths spread over the last quarter below
--prompt-tokens, so padding is exercised) on the same model, greedy, no n-gram ban, and exactly
--new-tokens tokens each (min = max new tokens: EOS can never end a row early, so both do the same work).
The model is the one evaluate.py decodes with (`minisumm.tools.decoding.ready_to_decode`): LoRA merged,
the fused GELU, and cast to --precision, which `auto` resolves as evaluate.py does (bf16 or fp16 on CUDA,
fp32 on CPU). Per method:
- plain: the base model;
- lora:  LoRA (r=8 on q, k, v) with random B, merged into the weights as for evaluation;
- prompt: a 20-token soft prompt; transformers gets it as `inputs_embeds` = [soft prompt, token embeddings]
  with the matching mask, the same layout `minisumm.model.body` builds.
Reported: generated tokens per second (batch × new tokens / best wall time of --repeats runs), the same for
transformers, the speedup, and whether both produced the same tokens. The two decoders take turns, so a
busy machine slows both alike; on a shared CPU still repeat a run before trusting a ratio.

    python benchmarks/bench_generate.py --model tiny-random --batch-size 2 --prompt-tokens 64 --new-tokens 16
    python benchmarks/bench_generate.py --model ../shared/gpt2 --random-init --batch-size 2 \\
        --prompt-tokens 256 --new-tokens 32 --json gen.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (a sibling file, not a package)

import torch  # noqa: E402

from minisumm import methods  # noqa: E402
from minisumm.tools.atomic import write_json  # noqa: E402
from minisumm.config import MethodConfig  # noqa: E402
from minisumm.device import resolve_precision  # noqa: E402
from minisumm.errors import MinisummError  # noqa: E402
from minisumm.generate import generate, left_pad  # noqa: E402
from minisumm.tools.decoding import ready_to_decode  # noqa: E402
from minisumm.tools.loading import load_model_and_tokenizer  # noqa: E402

SHARED_GPT2 = _common.SHARED_GPT2
METHODS = ("plain", "lora", "prompt")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help=f"Model (default: {SHARED_GPT2} with random weights if it "
                        f"exists, else tiny-random).")
    parser.add_argument("--random-init", action="store_true", help="Random weights (for folders without weights).")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=512, help="Length of the longest prompt.")
    parser.add_argument("--new-tokens", type=int, default=64, help="Tokens generated per prompt.")
    parser.add_argument("--repeats", type=int, default=2, help="Timed runs per decoder; the best one counts.")
    parser.add_argument("--methods", default=",".join(METHODS), help="Comma-separated subset of plain,lora,prompt.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="Decoding precision, as evaluate.py's flag (default: auto, as evaluate.py resolves it).")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    args = parser.parse_args(argv)
    args.precision = resolve_precision(args.precision, torch.device(args.device))
    if args.model is None:
        args.model, args.random_init = (str(SHARED_GPT2), True) if SHARED_GPT2.is_dir() else ("tiny-random", False)
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        parser.error(f"unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    return args


def build_model(args, method: str):
    """A fresh base model with `method` applied; weights of the method are random but not zero."""
    model, tokenizer = load_model_and_tokenizer(args.model, random_init=args.random_init)
    torch.manual_seed(0)
    if method == "lora":
        methods.apply(model, MethodConfig(method="lora", lora_rank=8, lora_dropout=0.0))
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.02)
    elif method == "prompt":
        methods.apply(model, MethodConfig(method="prompt", prompt_length=20, prompt_init="random"))
    model.to(args.device).eval()
    ready_to_decode(model, args.precision)  # LoRA merged, fused GELU, the precision's dtype: as evaluate.py
    return model, tokenizer


def random_prompts(args, vocab_size: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(0)
    shortest = max(1, args.prompt_tokens * 3 // 4)
    lengths = torch.linspace(args.prompt_tokens, shortest, args.batch_size).round().long().tolist()
    return [torch.randint(0, vocab_size - 1, (n,), generator=generator).tolist() for n in lengths]


def ours(model, prompts, new_tokens, eos_id):
    return generate(model, prompts, eos_id=eos_id, pad_id=eos_id, max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens, no_repeat_ngram=0)


def reference(model, prompts, new_tokens, eos_id):
    """transformers' generate on the same batch; a soft prompt goes in as input embeddings."""
    input_ids, attention_mask = left_pad(prompts, eos_id, model.lm_head.weight.device)
    settings = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
                    pad_token_id=eos_id, eos_token_id=eos_id)
    with torch.inference_mode():
        soft_prompt = getattr(model, "soft_prompt", None)
        if soft_prompt is None:
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask, **settings)
            out = out[:, input_ids.shape[1]:]
        else:  # with inputs_embeds, generate returns the new tokens only
            embeds, mask = soft_prompt.prepend(model.transformer.wte(input_ids), attention_mask)
            out = model.generate(inputs_embeds=embeds, attention_mask=mask, **settings)
    return out.tolist()


def best_times(decoders, repeats: int, device: str):
    """Best wall time of each decoder over `repeats` rounds (after one untimed warm-up), and its last output.

    The decoders take turns within each round, so a slow spell of a shared machine hits both alike.
    """
    for decode in decoders:
        decode()
    times = [[] for _ in decoders]
    outputs = [None for _ in decoders]
    for _ in range(repeats):
        for index, decode in enumerate(decoders):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            outputs[index] = decode()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[index].append(time.perf_counter() - start)
    return [min(t) for t in times], outputs


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {"settings": {k: getattr(args, k) for k in ("model", "random_init", "batch_size", "prompt_tokens",
                                                           "new_tokens", "repeats", "precision")},
               "machine": {"device": args.device, **_common.machine_info(torch.device(args.device))},
               "methods": {}}
    print(f"model {args.model}{' (random weights)' if args.random_init else ''}, batch {args.batch_size}, "
          f"prompts up to {args.prompt_tokens} tokens, {args.new_tokens} new tokens, device {args.device}, "
          f"{args.precision}, {torch.get_num_threads()} threads")
    print(f"{'method':<8} {'minisumm tok/s':>15} {'transformers tok/s':>19} {'speedup':>8}  same output")
    for method in args.methods.split(","):
        model, tokenizer = build_model(args, method)
        prompts = random_prompts(args, model.config.vocab_size)
        eos_id = tokenizer.eos_token_id
        generated = args.batch_size * args.new_tokens
        (our_time, ref_time), (our_out, ref_out) = best_times(
            [lambda: ours(model, prompts, args.new_tokens, eos_id),
             lambda: reference(model, prompts, args.new_tokens, eos_id)], args.repeats, args.device)
        same = sum(a == b for a, b in zip(our_out, ref_out)) / len(prompts)
        row = {"tokens_per_s": generated / our_time, "reference_tokens_per_s": generated / ref_time,
               "speedup": ref_time / our_time, "seconds": our_time, "reference_seconds": ref_time,
               "same_output_share": same, "generated_tokens": generated}
        results["methods"][method] = row
        print(f"{method:<8} {row['tokens_per_s']:>15.1f} {row['reference_tokens_per_s']:>19.1f} "
              f"{row['speedup']:>7.2f}x  {same:.0%}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(args.json), results)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MinisummError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
