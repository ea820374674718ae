"""Interoperability check, not a test: PEFT loads minisumm's exported adapters and gives the same logits.

PEFT is not a dependency of minisumm, not even of its tests. With PEFT installed (`pip install peft`),
this trains nothing: it perturbs a LoRA (all of c_attn; q and v plus the extra targets) and a soft prompt on
tiny-random, exports each with `python -m minisumm.tools.export --to peft`, loads it with
`PeftModel.from_pretrained` onto a fresh base model, and prints the largest logit difference.

    python benchmarks/check_peft.py        # measured 2026-11-28 with PEFT 0.21.2: 0.0 for all three
"""

import tempfile
from pathlib import Path

import torch

from minisumm import methods
from minisumm.model import build
from minisumm.tools.checkpoint import save_checkpoint
from minisumm.config import RunConfig
from minisumm.tools.export import export
from minisumm.model import body
from minisumm.model import load_model_and_tokenizer


def main() -> None:
    import peft

    print(f"peft {peft.__version__}")
    tmp = Path(tempfile.mkdtemp())
    for method, targets in (("lora", "qkv"), ("lora", "qv,proj,mlp"), ("prompt", "qkv")):
        config = RunConfig()
        config.model.model, config.method.method, config.method.lora_targets = "tiny-random", method, targets
        torch.manual_seed(0)
        model, tokenizer, params = build(config)
        with torch.no_grad():
            for param in params:  # move away from LoRA's zero init so the check means something
                param.add_(torch.randn_like(param) * 0.3)
        folder = tmp / f"{method}-{targets}" / "best"
        save_checkpoint(folder, config, methods.trainable_state_dict(model))
        adapter = export(folder, "peft", tmp / f"peft-{method}-{targets}")
        base, _ = load_model_and_tokenizer("tiny-random")
        theirs_model = peft.PeftModel.from_pretrained(base, str(adapter)).eval()
        ids = torch.tensor([tokenizer.encode("PEFT should give the same logits as minisumm.")])
        with torch.no_grad():
            ours = model.eval().lm_head(body(model, ids, torch.ones_like(ids))[0])  # (1, T, V)
            theirs = theirs_model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[:, -ids.shape[1]:]
        print(f"{method:<7}{targets if method == 'lora' else '':<14}max |logit difference| "
              f"{(ours - theirs).abs().max().item():.3g}")


if __name__ == "__main__":
    main()
