"""Flags a user can trust: an unknown flag is answered with the one it probably meant, in one line.

    $ python train.py --max_steps 100
    error: unknown flag --max_steps; did you mean --max-steps? (see train.py --help)
    $ python train.py --learning_rate 3e-4
    error: unknown flag --learning_rate; did you mean --lr? (see train.py --help)

Hugging Face's scripts spell flags in snake_case (`--max_steps`, `--output_dir`) and name some differently
(`--learning_rate`, `--per_device_train_batch_size`). minisumm keeps one spelling per flag rather than
accepting aliases, so that `--help`, a run's config.json and every example show the same name; the error
names that spelling instead. `suggest` tries, in order: the kebab-case spelling of a snake_case flag, the
Hugging Face name in `HF_FLAGS`, then the closest flag by `difflib`.
"""

from __future__ import annotations

import argparse
import difflib
import textwrap

from minisumm.errors import ArgumentParser

# Flags of Hugging Face's Trainer, PEFT and example scripts (run_summarization.py) → minisumm's. Only names
# that differ after snake_case → kebab-case; each is suggested only where the parser has that flag.
HF_FLAGS = {
    "learning_rate": "--lr", "output_dir": "--out", "overwrite_output_dir": "--overwrite",
    "resume_from_checkpoint": "--resume", "num_train_epochs": "--epochs",
    "per_device_train_batch_size": "--batch-size", "train_batch_size": "--batch-size",
    "gradient_accumulation_steps": "--grad-accum", "gradient_checkpointing": "--grad-checkpointing",
    "warmup_steps": "--warmup-ratio", "eval_steps": "--eval-every",
    "logging_steps": "--log-every", "early_stopping_patience": "--patience", "report_to": "--tensorboard",
    "bf16": "--precision bf16", "fp16": "--precision fp16", "lora_r": "--lora-rank", "r": "--lora-rank",
    "target_modules": "--lora-targets", "num_virtual_tokens": "--prompt-length",
    "prompt_tuning_init_text": "--prompt-init-text", "model_name_or_path": "--model", "dataset_name": "--data",
    "dataset_config_name": "--data-config", "text_column": "--article-field", "summary_column": "--summary-field",
    "max_train_samples": "--train-size", "max_eval_samples": "--validation-size",
    "max_predict_samples": "--test-size", "max_source_length": "--max-length", "block_size": "--max-length",
    "max_target_length": "--max-summary-tokens", "config_file": "--config",
}


def suggest(flag: str, known: list[str]) -> str | None:
    """The flag of `known` that `flag` (e.g. "--max_steps", "--lora_r=8") most probably meant, or None."""
    name = flag.split("=", 1)[0].lstrip("-")
    kebab = "--" + name.replace("_", "-")
    if kebab in known and kebab != flag:
        return kebab
    hf = HF_FLAGS.get(name)
    if hf and hf.split()[0] in known:
        return hf
    close = difflib.get_close_matches(kebab, known, n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_flag_message(extra: list[str], known: list[str]) -> str:
    """argparse's leftover arguments as one sentence: the first unknown flag and what it probably meant."""
    flag = next((arg for arg in extra if arg.startswith("--") or (arg.startswith("-") and arg[1:2].isalpha())),
                None)
    if flag is None:
        return f"unrecognized arguments: {' '.join(extra)}"
    shown = flag.split("=", 1)[0]
    guess = suggest(flag, known)
    return f"unknown flag {shown}; did you mean {guess}?" if guess else f"unknown flag {shown}"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help text wrapped between words only: argparse's default breaks "--article-field" after its hyphen. The
    description and epilog keep their own lines (examples)."""

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class FlagParser(ArgumentParser):
    """minisumm's ArgumentParser (one `error:` line) whose unknown flags name the flag they probably meant."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            known = [option for action in self._actions for option in action.option_strings
                     if option.startswith("--")]
            self.error(unknown_flag_message(extra, known))
        return parsed
