"""`python -m minisumm.tools.export RUN --to {hf,peft} DIR`: hand a trained model to the wider ecosystem.

- `--to hf`: a plain transformers model folder (config, model.safetensors, tokenizer): LoRA merged into
  the weights, last-layers and full as trained. `GPT2LMHeadModel.from_pretrained(DIR)` and
  `pipeline("text-generation", model=DIR)` load it without minisumm installed.
- `--to peft`: for LoRA and prompt tuning, an adapter folder in PEFT's on-disk format
  (`adapter_config.json` + `adapter_model.safetensors`, see `minisumm.tools.peft_format`) that
  `PeftModel.from_pretrained(base_model, DIR)` loads onto the same base model.

The folder is written under a temporary name and renamed into place, with `minisumm_export.json` (what
it was exported from) beside the model files, while this process holds DIR's lock (`minisumm.tools.folder_lock`).
An existing non-empty DIR is refused unless `--overwrite`, which replaces only a folder that is
recognisably an earlier export (it holds `minisumm_export.json`), never the run being exported, its base
model, or the current folder; a failed write leaves DIR as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from minisumm import __version__, methods
from minisumm.tools import folder_lock
from minisumm.tools.atomic import check_writable, staged_folder, write_json
from minisumm.model import load_checkpoint
from minisumm.tools.checkpoint import read_config, resolve
from minisumm.errors import ArgumentParser, MinisummError, run_cli, writing
from minisumm.tools.peft_format import peft_adapter
from minisumm.tools.run_folder import check_overwrite, run_inputs


def export_hf(model, tokenizer, folder: Path) -> None:
    model = methods.merge_and_unload(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def export_peft(model, config, folder: Path) -> None:
    adapter_config, tensors = peft_adapter(model, config.method, config.model.model)
    (folder / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
              folder / "adapter_model.safetensors", metadata={"format": "pt"})


MARKER = "minisumm_export.json"


def export(checkpoint: str | Path, to: str, out: str | Path, overwrite: bool = False) -> Path:
    out = Path(out)
    check_writable(out, "the export folder")
    with folder_lock.hold(out, "export folder"):
        if out.exists() and any(out.iterdir()):
            if not overwrite:
                raise MinisummError(f"{out} already exists and is not empty; choose another folder or pass "
                                    f"--overwrite.")
            source = resolve(checkpoint)
            run = source.parent if source.name in ("best", "last", "best.old", "last.old") else source
            checkpoints = [run / name for name in ("best", "last", "best.old", "last.old")]
            check_overwrite(out, [run, source, *checkpoints, *run_inputs(read_config(source))],
                            (out / MARKER).is_file(), "an export folder")
        model, tokenizer, config = load_checkpoint(checkpoint)
        with writing(f"the export {out}", f"{out} is as it was"):
            _write(model, tokenizer, config, to, out, {"source": str(checkpoint), "to": to})
    return out


def _write(model, tokenizer, config, to: str, out: Path, provenance: dict) -> None:
    """Write the export into a temporary folder beside `out`, then swap it in."""
    with staged_folder(out) as staging:
        if to == "hf":
            export_hf(model, tokenizer, staging)
        else:
            export_peft(model, config, staging)
        write_json(staging / MARKER, {**provenance, "minisumm_version": __version__})


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m minisumm.tools.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="A run folder, or its best/ or last/ folder.")
    p.add_argument("--to", required=True, choices=("hf", "peft"), help="Hugging Face model folder or PEFT adapter.")
    p.add_argument("out", help="Folder to write.")
    p.add_argument("--overwrite", action="store_true",
                   help="Replace an earlier export in the output folder (never anything else).")
    args = p.parse_args(argv)
    folder = export(args.checkpoint, args.to, args.out, args.overwrite)
    print(f"Wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
