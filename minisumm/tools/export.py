"""`python -m minisumm.tools.export RUN --to {hf,peft} DIR`: hand a trained model to the wider ecosystem.

- `--to hf`: a plain transformers model folder: config, model.safetensors (LoRA merged into the weights;
  last-layers and full as trained), the tokenizer, `generation_config.json` and a README.md model card.
  `GPT2LMHeadModel.from_pretrained(DIR)` and `pipeline("text-generation", model=DIR)` load it without
  minisumm installed.
- `--to peft`: for LoRA, prompt and prefix tuning, an adapter folder in PEFT's on-disk format
  (`adapter_config.json` + `adapter_model.safetensors`, see `minisumm.tools.peft_format`), with the
  tokenizer, `generation_config.json` and a model card. `AutoPeftModelForCausalLM.from_pretrained(DIR)`
  loads it with its base model; `PeftModel.from_pretrained(base_model, DIR)` puts it on a base you load.

What an export carries so that it is used as it was trained (the card says it in words, `model_card`):
- `generation_config.json`: minisumm's decoding (`config.DecodeConfig`): greedy, 128 new tokens at most,
  no sampling, EOS and padding ids. `no_repeat_ngram_size` is 0, because transformers' version counts the
  article as well; the card's `NoRepeatInSummary` applies minisumm's rule (the summary only).
- The tokenizer's `model_max_length` is the tokens a caller can give: the model's positions, less the soft
  prompt's. transformers' text-generation pipeline does not cut a long prompt by itself (a prompt past the
  positions ends in an IndexError); the card shows the two ways that do: minisumm's (cut the article's end,
  keep the separator) and the pipeline's `handle_long_generation="hole"` (keep the prompt's last tokens).
- The PEFT base model (`base_model_name_or_path`), chosen so that PEFT loads the weights the adapter was
  trained on:
      a hub id (`gpt2`)                      → recorded as it is; PEFT downloads it
      a local folder with weights            → its absolute path (valid on this machine, while it is there)
      tiny-random, tiny-news, --random-init  → the base is written beside the adapter, in DIR/base_model/,
                                               and recorded by its absolute path: these weights are built
                                               in code or in minisumm's cache, so no hub id names them
  PEFT reads a relative path from the current folder, not from DIR, so a relative path would load only
  from inside DIR. One `warning:` line says what was recorded and how to pass another copy of the base.

The folder is written under a temporary name and renamed into place (`atomic.staged_folder`), with
`minisumm_export.json` (what it was exported from, decoding, prompt format) beside the model files, while
this process holds DIR's lock (`minisumm.tools.folder_lock`). `minisumm_export.json` lists every file the
export wrote. An existing non-empty DIR is refused unless `--overwrite`, which replaces only an earlier
export holding nothing but the files its list names (a `.git/` or notes added since are refused, named),
never the run being exported, its base model, or the current folder; a failed write leaves DIR as it was.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import save_file
from transformers import GenerationConfig

from minisumm import __version__, methods
from minisumm.config import DecodeConfig, RunConfig
from minisumm.errors import MinisummError, run_cli, writing
from minisumm.tools.flags import FlagParser
from minisumm.tools import folder_lock, json_files
from minisumm.tools.console import library_bars
from minisumm.tools.atomic import check_writable, staged_folder, write_file, write_json, write_text
from minisumm.tools.checkpoint import CHECKPOINT_NAMES, load_checkpoint, read_config, resolve, run_of
from minisumm.tools.loading import TINY_NEWS, TINY_RANDOM, load_model_and_tokenizer
from minisumm.tools.model_card import Facts, hf_card, peft_card
from minisumm.tools.peft_format import peft_adapter
from minisumm.tools.run_folder import check_overwrite, run_inputs

MARKER = "minisumm_export.json"
BASE_FOLDER = "base_model"


def generation_config(tokenizer, decode: DecodeConfig) -> GenerationConfig:
    """minisumm's decoding settings as transformers reads them; `no_repeat_ngram_size` 0 (module docstring)."""
    beam_only = {"early_stopping": True} if decode.beams > 1 else {}  # minisumm stops at num_beams finished
    return GenerationConfig(do_sample=False, num_beams=decode.beams, max_new_tokens=decode.max_new_tokens,
                            min_new_tokens=decode.min_new_tokens, length_penalty=decode.length_penalty,
                            no_repeat_ngram_size=0, bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **beam_only)


@dataclass
class PeftBase:
    """Where PEFT finds the base model: `recorded` goes into adapter_config.json."""
    recorded: str
    beside: bool     # the base is written into DIR/base_model/
    note: str        # a sentence for the card
    base_copy: str   # where the card's code loads the base from when it passes it explicitly
    warning: str     # the one `warning:` line


def peft_base(config: RunConfig, out: Path) -> PeftBase:
    """Choose base_model_name_or_path (the table in the module docstring)."""
    name = config.model.model
    if config.model.random_init or name in (TINY_RANDOM, TINY_NEWS):
        why = ("was built with random weights (--random-init)" if config.model.random_init else
               "is built in code" if name == TINY_RANDOM else "was built in minisumm's cache")
        beside = out / BASE_FOLDER
        return PeftBase(str(beside.resolve()), True,
                        f"The base model ({name}) {why}, so no hub id names its weights: they are in "
                        f"`{BASE_FOLDER}/`, recorded by absolute path (PEFT would read a relative one from the "
                        f"current folder). After moving this folder, pass the base yourself.",
                        f"{out.name}/{BASE_FOLDER}",
                        f"warning: the base model ({name}) {why}, so it was written to {beside} and recorded "
                        f"as base_model_name_or_path by its absolute path; after moving the export, pass it "
                        f"yourself: {_other_copy(repr(str(beside)), out)}.")
    local = Path(name).expanduser()
    if local.is_dir():
        recorded = str(local.resolve())
        return PeftBase(recorded, False,
                        "It is a local folder: PEFT finds it on the machine that exported the adapter, while the "
                        "folder is there.", recorded,
                        f"warning: base_model_name_or_path is the local folder {recorded}, valid on this machine "
                        f"only; elsewhere pass the base yourself: {_other_copy('BASE', out)}.")
    return PeftBase(name, False, "PEFT downloads it from the Hugging Face hub (or takes it from the local cache).",
                    name, f"warning: base_model_name_or_path is the hub id {name!r}, which PEFT downloads; to use "
                          f"another copy of it: {_other_copy('BASE', out)}.")


def _other_copy(base: str, out: Path) -> str:
    """The call that puts the adapter in `out` on the base `base` (a Python expression)."""
    return f"PeftModel.from_pretrained(GPT2LMHeadModel.from_pretrained({base}), {str(out)!r})"


def export_hf(model, tokenizer, facts: Facts, folder: Path) -> None:
    """The transformers folder: merged weights, tokenizer, generation_config.json, model card."""
    model = methods.merge_and_unload(model)
    model.generation_config = generation_config(tokenizer, facts.decode)
    tokenizer.model_max_length = facts.n_positions
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_text(folder / "README.md", hf_card(facts))


def export_peft(model, tokenizer, facts: Facts, folder: Path, base: PeftBase) -> None:
    """The PEFT folder: adapter, tokenizer, generation_config.json, model card, and the base when `base.beside`."""
    config = facts.config
    adapter_config, tensors = peft_adapter(model, config.method, base.recorded)
    write_json(folder / "adapter_config.json", adapter_config)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write_file(folder / "adapter_model.safetensors", lambda path: save_file(tensors, path, metadata={"format": "pt"}))
    tokenizer.model_max_length = facts.n_positions - facts.prefix  # a soft prompt or prefix takes P positions
    tokenizer.save_pretrained(folder)
    generation_config(tokenizer, facts.decode).save_pretrained(folder)
    if base.beside:
        base_model, base_tokenizer = load_model_and_tokenizer(config.model.model, random_init=config.model.random_init)
        base_model.save_pretrained(folder / BASE_FOLDER)
        base_tokenizer.save_pretrained(folder / BASE_FOLDER)
    write_text(folder / "README.md", peft_card(facts, base.recorded, base.note, base.base_copy))


def facts_of(model, tokenizer, config: RunConfig, source: Path, out: Path) -> Facts:
    """What the model card states, from the loaded checkpoint and its run folder."""
    run = run_of(source)
    facts = Facts(run=run.name, config=config, decode=DecodeConfig(), metrics=_read_metrics(run / "eval", source),
                  trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                  total=sum(p.numel() for p in model.parameters()),
                  separator_tokens=len(tokenizer.encode(config.data.separator, add_special_tokens=False)),
                  n_positions=model.config.n_positions, folder=out.name)
    if facts.max_article_tokens < 1:
        raise MinisummError(f"The run's --max-length {config.data.max_length} leaves no room for an article beside "
                            f"the soft prompt or prefix ({facts.prefix}), the separator ({facts.separator_tokens}) and "
                            f"{facts.decode.max_new_tokens} new tokens, so its export could not summarise anything; "
                            f"train with a larger --max-length.")
    return facts


def _read_metrics(folder: Path, source: Path) -> dict | None:
    """evaluate.py's scores in `folder`, unless they are of another checkpoint than `source` (best/ and last/
    share the run's eval/)."""
    try:
        metrics = json_files.read(folder / "metrics.json")
    except (OSError, ValueError):
        return None  # not evaluated (or unreadable): the card says how to evaluate
    if not isinstance(metrics, dict):
        return None
    try:
        evaluated = resolve(metrics.get("source", ""))
    except MinisummError:  # written from another current folder: the card names the source it gives
        return metrics
    return metrics if evaluated.resolve() == source.resolve() else None


def foreign_entry(out: Path) -> str | None:
    """Why `out` is not purely an earlier export ("holds .git, which ..."), or None when every file and
    folder in it is one that its minisumm_export.json lists."""
    try:
        listed = json_files.read(out / MARKER).get("files")
    except (OSError, ValueError, AttributeError):
        listed = None
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        return f"has no {MARKER} listing the files of a minisumm export"
    ours = {*listed, *(parent.as_posix() for name in listed for parent in Path(name).parents)}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if name not in ours or path.is_symlink() or (path.is_dir() and name in listed):
            return f"holds {name}, which minisumm did not write"
    return None


def export(checkpoint: str | Path, to: str, out: str | Path, overwrite: bool = False) -> Path:
    out = Path(out)
    check_writable(out, "the export folder")
    with folder_lock.hold(out, "export folder"):
        source = resolve(checkpoint)
        if out.exists() and any(out.iterdir()):
            if not overwrite:
                raise MinisummError(f"{out} already exists and is not empty; choose another folder or pass "
                                    f"--overwrite.")
            run = run_of(source)
            checkpoints = [run / name for name in CHECKPOINT_NAMES]
            check_overwrite(out, [run, source, *checkpoints, *run_inputs(read_config(source))],
                            foreign_entry(out), "an export folder")
        model, tokenizer, config = load_checkpoint(checkpoint)
        facts = facts_of(model, tokenizer, config, source, out)
        base = peft_base(config, out) if to == "peft" else None
        provenance = {"source": str(checkpoint), "to": to, "minisumm_version": __version__,
                      "decoding": dataclasses.asdict(facts.decode), "separator": config.data.separator,
                      "max_input_tokens": facts.max_input_tokens, "max_article_tokens": facts.max_article_tokens}
        with writing(f"the export {out}", f"{out} is as it was"), staged_folder(out) as staging:
            if base is None:
                export_hf(model, tokenizer, facts, staging)
            else:
                export_peft(model, tokenizer, facts, staging, base)
                provenance["base_model_name_or_path"] = base.recorded
            provenance["files"] = sorted([MARKER, *(path.relative_to(staging).as_posix()
                                                    for path in staging.rglob("*") if not path.is_dir())])
            write_json(staging / MARKER, provenance)
    if base is not None:
        print(base.warning, file=sys.stderr)
    return out


def main(argv=None, prog: str = "python -m minisumm.tools.export") -> int:
    p = FlagParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="A run folder, or its best/ or last/ folder.")
    p.add_argument("--to", required=True, choices=("hf", "peft"), help="Hugging Face model folder or PEFT adapter.")
    p.add_argument("out", help="Folder to write.")
    p.add_argument("--overwrite", action="store_true",
                   help="Replace an earlier export in the output folder (never anything else).")
    args = p.parse_args(argv)
    library_bars(True)  # transformers' "Loading weights" and "Writing model shards" bars: on a terminal only
    folder = export(args.checkpoint, args.to, args.out, args.overwrite)
    print(f"Wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
