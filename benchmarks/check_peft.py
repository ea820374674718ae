"""Interoperability check, not a test: PEFT loads minisumm's exported adapters and gives minisumm's results.

PEFT is not a dependency of minisumm, not even of its tests (they read the format by hand). With PEFT
installed (`pip install peft`), this trains nothing: it perturbs a LoRA (all of c_attn; q and v plus the
extra targets), a soft prompt and a prefix (plain, and trained through the projection: exported folded) on
tiny-random, exports each with `--to peft`, and
- loads it with `AutoPeftModelForCausalLM.from_pretrained(DIR)` alone, from another folder, so the base
  model comes from the recorded `base_model_name_or_path`, and prints the largest logit difference;
- runs the "Use" code of the export's model card on a long article and says whether its summary is
  minisumm's own (greedy, the 3-gram rule on the summary only).

    python benchmarks/check_peft.py
    # measured 2026-11-29, PEFT 0.21.2, transformers 5.24.0: logits 0, 2.3e-05 (float32 rounding: PEFT adds
    # one rank-2r pair where minisumm adds two rank-r ones) and 0 apart; the card's summary is minisumm's for
    # all three (the prompt-tuning card passes use_cache=False: its comment says why)
    # measured 2026-12-03, the same versions: both prefixes (plain; projected, exported folded) 0 apart, the
    # card's summary minisumm's (the prefix-tuning card passes use_cache=False too: with a cache, PEFT's
    # decoding departs from minisumm's after a few tokens)
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import minisumm
from minisumm import methods
from minisumm.batching import encode_prompt
from minisumm.config import RunConfig
from minisumm.generate import generate
from minisumm.model import body, build
from minisumm.tools.checkpoint import load_checkpoint, save_checkpoint
from minisumm.tools.export import export
from minisumm.tools.loading import load


def minisumm_summary(checkpoint, article: str) -> str:
    model, tokenizer, config = load_checkpoint(checkpoint)
    methods.merge(model)
    prompt = encode_prompt(tokenizer, article, config.data, methods.prefix_tokens(config.method), 128)
    ids = generate(model, [prompt], eos_id=tokenizer.eos_token_id, pad_id=tokenizer.eos_token_id,
                   max_new_tokens=128, no_repeat_ngram=3)[0]
    return tokenizer.decode(ids, skip_special_tokens=True)


def main() -> None:
    import peft

    print(f"peft {peft.__version__}")
    tmp = Path(tempfile.mkdtemp())
    rows = [json.loads(line) for line in (Path(minisumm.__file__).parent / "sample_data" / "test.jsonl").open()]
    article = " ".join(row["article"] for row in rows[:3])  # longer than tiny-random's 512 positions
    (tmp / "article.txt").write_text(article)
    for method, targets, projection in (("lora", "qkv", False), ("lora", "qv,proj,mlp", False),
                                        ("prompt", "qkv", False), ("prefix", "qkv", False), ("prefix", "qkv", True)):
        config = RunConfig()
        config.model.model, config.method.method, config.method.lora_targets = "tiny-random", method, targets
        config.method.prefix_projection = projection  # exported folded: the MLP's output
        config.data.max_length = 512
        torch.manual_seed(0)
        model, tokenizer, params, config = build(config, load)
        with torch.no_grad():
            for param in params:  # move away from LoRA's zero init so the check means something
                param.add_(torch.randn_like(param) * 0.3)
        name = f"{method}-{targets.replace(',', '-')}" + ("-projection" if projection else "")
        checkpoint = tmp / name / "best"
        save_checkpoint(checkpoint, config, methods.trainable_state_dict(model))
        adapter = export(checkpoint, "peft", tmp / f"peft-{name}")
        os.chdir(tempfile.mkdtemp())  # PEFT must find the base by the recorded path, not the current folder
        theirs_model = peft.AutoPeftModelForCausalLM.from_pretrained(str(adapter)).eval()
        ids = torch.tensor([tokenizer.encode("PEFT should give the same logits as minisumm.")])
        with torch.no_grad():
            ours = model.eval().lm_head(body(model, ids, torch.ones_like(ids))[0])  # (1, T, V)
            theirs = theirs_model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[:, -ids.shape[1]:]
        card = (adapter / "README.md").read_text().split("## Use")[1]
        code = re.findall(r"```python\n(.*?)```", card, re.S)[0]
        run = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True,
                             env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        same = run.returncode == 0 and run.stdout == minisumm_summary(checkpoint, article) + "\n"
        failed = "" if run.returncode == 0 else f" (the card's code failed: {run.stderr.strip().splitlines()[-1]})"
        detail = targets if method == "lora" else "projection" if projection else ""
        print(f"{method:<7}{detail:<14}max |logit difference| "
              f"{(ours - theirs).abs().max().item():.3g}; the card's summary is minisumm's: "
              f"{'yes' if same else 'NO'}{failed}")


if __name__ == "__main__":
    main()
