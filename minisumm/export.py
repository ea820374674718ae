"""`python -m minisumm.export RUN --to {hf,peft} DIR`: hand a trained model to the wider ecosystem.

- `--to hf`: a plain transformers model folder (config, model.safetensors, tokenizer): LoRA merged into
  the weights, last-layers and full as trained. `GPT2LMHeadModel.from_pretrained(DIR)` and
  `pipeline("text-generation", model=DIR)` load it without minisumm installed.
- `--to peft`: for LoRA and prompt tuning, an adapter folder in PEFT's on-disk format
  (`adapter_config.json` + `adapter_model.safetensors`, see `minisumm.methods.peft_format`) that
  `PeftModel.from_pretrained(base_model, DIR)` loads onto the same base model.

The folder is written under a temporary name and renamed into place; an existing non-empty DIR is
refused unless `--overwrite`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from safetensors.torch import save_file

from minisumm import methods
from minisumm.checkpoint import load_checkpoint
from minisumm.errors import MinisummError, run_cli
from minisumm.methods.peft_format import peft_adapter


def export_hf(model, tokenizer, folder: Path) -> None:
    model = methods.merge_and_unload(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def export_peft(model, config, folder: Path) -> None:
    adapter_config, tensors = peft_adapter(model, config.method, config.model.model)
    (folder / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
              folder / "adapter_model.safetensors", metadata={"format": "pt"})


def export(checkpoint: str | Path, to: str, out: str | Path, overwrite: bool = False) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise MinisummError(f"{out} already exists and is not empty; choose another folder or pass --overwrite.")
    model, tokenizer, config = load_checkpoint(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        if to == "hf":
            export_hf(model, tokenizer, staging)
        else:
            export_peft(model, config, staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m minisumm.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="A run folder, or its best/ or last/ folder.")
    p.add_argument("--to", required=True, choices=("hf", "peft"), help="Hugging Face model folder or PEFT adapter.")
    p.add_argument("out", help="Folder to write.")
    p.add_argument("--overwrite", action="store_true", help="Replace a non-empty output folder.")
    args = p.parse_args(argv)
    folder = export(args.checkpoint, args.to, args.out, args.overwrite)
    print(f"Wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
