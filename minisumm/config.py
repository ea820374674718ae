"""Every setting of a run, as four dataclasses with one help text per field.

The CLIs build their flags from these fields (`add_arguments`), checkpoints store them as JSON
(`RunConfig.to_dict` / `RunConfig.from_dict`), and `validate()` rejects bad values before any work is
done, naming the allowed range. One place for each setting: its default, its help and its check.

`--help` states each default once: `add_arguments` appends "(default: X)" unless the help text already
says what the default is, as it must where the default is None ("default: once per epoch").
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field

from minisumm.errors import MinisummError, excerpt

METHODS = ("prompt", "prefix", "lora", "last-layers", "full")

# Default learning rates per method (AdamW, peak of the warmup + cosine schedule).
# - prompt: Lester et al. 2021 used Adafactor at 0.3 (constant); with AdamW, 3e-2 to 3e-1 is the usual
#   range. A soft prompt needs a far higher rate than weights inside the network.
# - prefix: 5e-3 for the plain key/value tensors, P-tuning v2's range for GPT-sized models (Liu et al. 2022
#   report 5e-3 to 1e-2); Li & Liang's reparameterised prefix (--prefix-projection) trained at 5e-5.
# - lora: 2e-4, the LoRA paper's GPT-2 recipe (Hu et al. 2021, E2E NLG, appendix D).
# - last-layers: 1e-4, between LoRA's rate and full fine-tuning's, as only 2 of 12 blocks move.
# - full: 5e-5, the common rate for fine-tuning GPT-2 small end to end (Radford et al. fine-tuning
#   practice; Hugging Face's run_clm default is 5e-5).
DEFAULT_LR = {"prompt": 3e-2, "prefix": 5e-3, "lora": 2e-4, "last-layers": 1e-4, "full": 5e-5}

# The same, for `--model tiny-news` (minisumm.tiny_news.pretrain): a 1.4M-parameter model fine-tuned for ~100 steps
# on 320 stories moves far less per step at GPT-2's rates. Chosen on the sample's validation split (never the
# test split; best validation loss after train.py's defaults, 2 CPU cores): prompt 1e-1 → 5.38, 3e-1 → 5.28;
# LoRA 1e-2 → 2.74, 3e-2 → 2.64, 1e-1 diverges; last-layers 3e-3 → 1.42, 1e-2 → 1.46; full 2e-3 → 0.70.
# That is 10x, 150x, 30x and 40x the GPT-2 rates above. `--lr` overrides them. Prefix (2026-12-03, the same
# way, from 6.19 at step 0): 1e-2 → 5.99, 3e-2 → 4.92, 1e-1 → 3.59, 3e-1 → 3.12, 1 → 3.47 (60x the GPT-2 rate);
# with --prefix-projection 1e-3 → 4.52, 3e-3 → 4.00, 1e-2 → 3.66, 3e-2 → 3.56, 1e-1 diverges. Hence 3e-1, and the
# projection off by default: at the same 100 steps and about the same time, the plain prefix ends lower.
TINY_NEWS_LR = {"prompt": 3e-1, "prefix": 3e-1, "lora": 3e-2, "last-layers": 3e-3, "full": 2e-3}

DEFAULT_EPOCHS = 10
# On tiny-news 10 epochs (100 steps) end every method before its curve has flattened. Measured on the sample's
# validation split (2026-12-03, no dropout): LoRA 6.18 → 1.90 in a 10-epoch run, 1.45 in a 30-epoch one (the
# last five gaining 0.05); prompt 6.19 → 3.92, prefix 6.19 → 1.83, both still gaining ~0.01 an epoch at the end;
# last-layers stops early after 14 epochs, its best 1.15 at epoch 11. `--epochs` overrides. The rates above
# still stand there: prompt 1 → 3.91 against 3e-1 → 3.92, LoRA 1e-2 → 1.57 against 3e-2 → 1.45, prefix
# 1e-1 → 2.09 and 1 → 2.01 against 3e-1 → 1.83.
TINY_NEWS_EPOCHS = 30


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class ModelConfig:
    model: str = field(default="gpt2", metadata=_help(
        "Base model: a Hugging Face hub id, a local save_pretrained folder, 'tiny-news' (a 1.4M-parameter "
        "GPT-2 pretrained on invented news, shipped with minisumm: offline runs that learn) or 'tiny-random' "
        "(random weights, byte-level tokenizer: for tests)."))
    random_init: bool = field(default=False, metadata=_help(
        "Build the model from its config with random weights (a folder with config and tokenizer but "
        "no weights needs this; never done silently)."))
    dropout: float | None = field(default=None, metadata=_help(
        "Override GPT-2's dropout (embedding, attention, residual) (default: the model's own, 0.1 for GPT-2)."))


@dataclass
class DataConfig:
    data: str = field(default="cnn_dailymail", metadata=_help(
        "Data source: 'cnn_dailymail' (shorthand for abisee/cnn_dailymail 3.0.0, fields article, highlights, "
        "id), 'sample' (400 invented news stories shipped with minisumm: offline runs), a local "
        ".jsonl/.json/.csv file split by --split-ratios, or a summarisation dataset on the Hugging Face hub "
        "as OWNER/NAME, e.g. EdinburghNLP/xsum with --article-field document --summary-field summary."))
    data_config: str | None = field(default=None, metadata=_help(
        "Configuration of a hub dataset, as datasets.load_dataset's second argument (default: none; "
        "3.0.0 for 'cnn_dailymail')."))
    train_split: str = field(default="train", metadata=_help(
        "Split of a hub dataset to train on: a name, or a slice of one such as 'train[:95%]'."))
    validation_split: str = field(default="validation", metadata=_help(
        "Split of a hub dataset to validate on; for a dataset without one, hold out part of train: "
        "--train-split 'train[:95%]' --validation-split 'train[95%:]'."))
    test_split: str = field(default="test", metadata=_help("Split of a hub dataset to test on."))
    train_file: str | None = field(default=None, metadata=_help(
        "Local file for the train split, instead of --data (default: none)."))
    validation_file: str | None = field(default=None, metadata=_help(
        "Local file for the validation split (default: none)."))
    test_file: str | None = field(default=None, metadata=_help("Local file for the test split (default: none)."))
    article_field: str = field(default="article", metadata=_help(
        "Field holding the article, in local files and OWNER/NAME hub datasets (CNN/DailyMail: article; "
        "XSum: document)."))
    summary_field: str = field(default="highlights", metadata=_help(
        "Field holding the reference summary, sentences joined by newlines (CNN/DailyMail: highlights; "
        "XSum: summary)."))
    id_field: str = field(default="id", metadata=_help(
        "Field holding the example id, the row number where absent (CNN/DailyMail and XSum: id)."))
    train_size: str = field(default="21000", metadata=_help(
        "Examples drawn (seeded) from the train split, or 'all'; a smaller split is used whole, with a note."))
    validation_size: str = field(default="6000", metadata=_help(
        "Examples drawn (seeded) from the validation split, or 'all'."))
    test_size: str = field(default="3000", metadata=_help(
        "Examples drawn (seeded) from the test split, or 'all'."))
    split_ratios: str = field(default="0.8,0.1,0.1", metadata=_help(
        "train,validation,test shares when one local file is split into three."))
    max_length: int = field(default=1024, metadata=_help(
        "Tokens per example, shared by the soft prompt, article, separator, summary and EOS "
        "(GPT-2 has 1,024 positions; capped at the model's)."))
    max_summary_tokens: int = field(default=128, metadata=_help(
        "Cap on summary tokens; the article is truncated to fit, never the summary."))
    separator: str = field(default="\nTL;DR: ", metadata=_help(
        "Text between article and summary (GPT-2's own summarisation cue)."))
    group_by_length: bool = field(default=True, metadata=_help(
        "Batch examples of similar length together (sorted inside shuffled mega-batches) to waste "
        "less compute on padding."))
    cache_dir: str | None = field(default=None, metadata=_help(
        "Where tokenised datasets are cached (default: ~/.cache/minisumm)."))

    def split_sizes(self) -> dict[str, int | None]:
        """Requested examples per split, None meaning the whole split."""
        return {"train": _size(self.train_size, "train-size"),
                "validation": _size(self.validation_size, "validation-size"),
                "test": _size(self.test_size, "test-size")}

    def ratios(self) -> tuple[float, float, float]:
        try:
            parts = tuple(float(p) for p in self.split_ratios.split(","))
        except ValueError:
            parts = ()
        if len(parts) != 3 or any(p < 0 for p in parts) or not 0.999 <= sum(parts) <= 1.001:
            raise MinisummError(f"--split-ratios must be three non-negative numbers that add up to 1, "
                                f"like 0.8,0.1,0.1; got {excerpt(self.split_ratios)}.")
        return parts


@dataclass
class MethodConfig:
    method: str = field(default="prompt", metadata=_help(
        "Fine-tuning method.", choices=METHODS))
    prompt_length: int = field(default=20, metadata=_help(
        "Soft-prompt tokens P (prompt tuning); each uses one of the model's positions."))
    prompt_init: str = field(default="text", metadata=_help(
        "Soft-prompt initialisation: embeddings of --prompt-init-text, of tokens sampled from the 5,000 "
        "most frequent, or uniform random.", choices=("text", "vocab", "random")))
    prompt_init_text: str = field(default="Summarize the following news article:", metadata=_help(
        "Text whose token embeddings (prompt tuning) or keys and values in every layer (prefix tuning without "
        "the projection), cycled or cut to P tokens, are the starting point."))
    prefix_length: int = field(default=20, metadata=_help(
        "Prefix key/value vectors P per layer (prefix tuning); the text then starts at position P."))
    prefix_projection: bool = field(default=False, metadata=_help(
        "Train the prefix through Li & Liang's reparameterisation, a P x n_embd embedding and a two-layer MLP "
        "to every layer's keys and values, folded into plain tensors in best/; off: train the key/value tensors "
        "directly, initialised from GPT-2's own keys and values for --prompt-init-text."))
    lora_rank: int = field(default=8, metadata=_help("LoRA rank r."))
    lora_alpha: float = field(default=16.0, metadata=_help("LoRA scale alpha; the update is scaled by alpha/r."))
    lora_dropout: float = field(default=0.05, metadata=_help("Dropout on the LoRA path's input."))
    lora_targets: str = field(default="qkv", metadata=_help(
        "What LoRA adapts: the letters of q, k, v in c_attn ('qkv', 'qv', ...), optionally followed by "
        "',proj' (attention output) and ',mlp' (both MLP layers), e.g. 'qkv,proj,mlp'."))
    last_layers: int = field(default=2, metadata=_help(
        "Transformer blocks trained by last-layers fine-tuning (the final layer norm trains too)."))
    train_lm_head: bool = field(default=False, metadata=_help(
        "Also train the LM head with last-layers; GPT-2 ties it to the input embedding, so this trains "
        "the input embedding too (38.6M parameters on GPT-2 small)."))

    def qkv(self) -> str:
        """The q/k/v letters of --lora-targets, e.g. 'qv'."""
        return self.lora_targets.split(",")[0]

    def lora_extras(self) -> tuple[str, ...]:
        return tuple(t for t in self.lora_targets.split(",")[1:] if t)


@dataclass
class TrainConfig:
    epochs: int | None = field(default=None, metadata=_help(
        "Upper bound on epochs; early stopping usually ends sooner (default: 10; 30 with --model tiny-news, "
        "whose curves are still falling at 10)."))
    max_steps: int | None = field(default=None, metadata=_help(
        "Upper bound on optimizer steps (default: none, --epochs and early stopping decide)."))
    batch_size: int = field(default=8, metadata=_help("Examples per micro-batch."))
    grad_accum: int = field(default=4, metadata=_help(
        "Micro-batches accumulated per optimizer step (effective batch = batch size x this)."))
    lr: float | None = field(default=None, metadata=_help(
        "Peak learning rate (default: per method: prompt 3e-2, prefix 5e-3, lora 2e-4, last-layers 1e-4, full "
        "5e-5; with --model tiny-news: 3e-1, 3e-1, 3e-2, 3e-3, 2e-3)."))
    min_lr_ratio: float = field(default=0.1, metadata=_help("The cosine decays to this share of the peak rate."))
    warmup_ratio: float = field(default=0.05, metadata=_help("Share of the optimizer steps spent in linear warmup."))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay."))
    decay_1d: bool = field(default=False, metadata=_help(
        "Also decay 1-D tensors, biases and layer norms (default: off, only tensors of 2 or more dimensions "
        "decay)."))
    max_grad_norm: float = field(default=1.0, metadata=_help(
        "Gradient clipping norm (after unscaling); 0 turns it off."))
    precision: str = field(default="auto", metadata=_help(
        "auto: bf16 on CUDA where supported, else fp16 with GradScaler; fp32 on CPU.",
        choices=("auto", "fp32", "bf16", "fp16")))
    grad_checkpointing: bool = field(default=False, metadata=_help(
        "Recompute each block's activations in the backward pass: less memory, about a third more compute."))
    eval_every: int | None = field(default=None, metadata=_help(
        "Validate every N optimizer steps (default: once per epoch)."))
    patience: int = field(default=3, metadata=_help("Stop after this many validations without improvement."))
    eval_batches: int | None = field(default=None, metadata=_help(
        "Validate on at most this many batches (default: the whole validation split)."))
    log_every: int = field(default=10, metadata=_help("Log the training loss every N optimizer steps."))
    seed: int = field(default=42, metadata=_help("Seed for data subsets, data order, initialisation and dropout."))
    device: str = field(default="auto", metadata=_help("cpu, cuda, cuda:N or auto."))
    tensorboard: bool = field(default=False, metadata=_help(
        "Also write metrics.jsonl's scalars (train loss, lr, grad_norm, tokens/s; val_loss, best_loss) to "
        "<run>/tensorboard/ for TensorBoard; needs pip install 'minisumm[tensorboard]'."))
    compile: bool = field(default=False, metadata=_help(
        "torch.compile each transformer block (minisumm.compiling): fewer, fused kernels on a GPU after a "
        "first compile of seconds to minutes; the same numbers to float rounding."))
    speedups: bool = field(default=True, metadata=_help(
        "Run minisumm.speedups, exact faster equals of the plain code (the loss with the last block at the "
        "labelled positions only, block attention on CPU, the fused GELU), and decode with LoRA merged; "
        "--no-speedups runs the plain lesson code instead (minisumm.loss, GPT-2's own attention and GELU, "
        "LoRA beside its weights): slower, the same numbers to float rounding."))


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def peak_lr(self) -> float:
        """--lr, else the method's default (TINY_NEWS_LR for `--model tiny-news`, DEFAULT_LR otherwise)."""
        if self.train.lr is not None:
            return self.train.lr
        return (TINY_NEWS_LR if self.model.model == "tiny-news" else DEFAULT_LR)[self.method.method]

    def max_epochs(self) -> int:
        """--epochs, else DEFAULT_EPOCHS (TINY_NEWS_EPOCHS for `--model tiny-news`)."""
        if self.train.epochs is not None:
            return self.train.epochs
        if self.model.model == "tiny-news":
            return TINY_NEWS_EPOCHS
        return DEFAULT_EPOCHS

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "RunConfig":
        """Rebuild from `to_dict` output, checking every value's type. Unknown keys are an error (a newer
        format); every section and the keys that choose model, data and method are required (a config that
        lost them must not quietly train on CNN/DM); other missing keys take their defaults."""
        if not isinstance(raw, dict):
            raise MinisummError(f"{source}: 'config' should be an object of settings; got {type(raw).__name__}.")
        parts = {}
        for section in dataclasses.fields(cls):
            section_cls = section.default_factory
            if section.name not in raw:
                raise MinisummError(f"{source} has no {section.name!r} section; the run's settings are incomplete.")
            values = raw[section.name]
            if not isinstance(values, dict):
                raise MinisummError(f"{source}: section {section.name!r} should be an object.")
            known = {f.name: f for f in dataclasses.fields(section_cls)}
            unknown = sorted(set(values) - set(known))
            if unknown:
                raise MinisummError(f"{source} has settings this minisumm does not know ({', '.join(unknown)}); "
                                    f"it was probably written by a newer version: upgrade minisumm.")
            for name in REQUIRED_KEYS.get(section.name, ()):
                if name not in values:
                    raise MinisummError(f"{source} has no {section.name}.{name}; the run's settings are incomplete.")
            for name, value in values.items():
                if not has_type(value, str(known[name].type)):
                    expected = TYPE_WORDS[str(known[name].type)]
                    raise MinisummError(f"{source}: {section.name}.{name} should be {expected}; got {excerpt(value)}.")
            parts[section.name] = section_cls(**values)
        return cls(**parts)

    def validate(self) -> None:
        """Reject invalid values before any work is done, naming the allowed range."""
        m, d, t = self.method, self.data, self.train
        if m.method not in METHODS:
            raise MinisummError(f"Unknown method {excerpt(m.method)}; choose one of {', '.join(METHODS)}.")
        _check(self.model.dropout is None or 0 <= self.model.dropout < 1,
               f"--dropout must be in [0, 1); got {self.model.dropout}.")
        _check(m.prompt_length >= 1, f"--prompt-length must be at least 1; got {m.prompt_length}.")
        _check(m.prefix_length >= 1, f"--prefix-length must be at least 1; got {m.prefix_length}.")
        _check(m.lora_rank >= 1, f"--lora-rank must be a positive integer (1 or more); got {m.lora_rank}.")
        _check(math.isfinite(m.lora_alpha) and m.lora_alpha > 0,
               f"--lora-alpha must be a positive number; got {m.lora_alpha}.")
        _check(0 <= m.lora_dropout < 1, f"--lora-dropout must be in [0, 1); got {m.lora_dropout}.")
        qkv = m.qkv()
        _check(bool(qkv) and set(qkv) <= set("qkv") and len(set(qkv)) == len(qkv)
               and set(m.lora_extras()) <= {"proj", "mlp"},
               f"--lora-targets must be letters from q, k, v optionally followed by ',proj' and/or ',mlp' "
               f"(e.g. 'qkv' or 'qv,proj'); got {excerpt(m.lora_targets)}.")
        _check(m.last_layers >= 1, f"--last-layers must be at least 1; got {m.last_layers}.")
        _check(d.max_summary_tokens >= 1, f"--max-summary-tokens must be at least 1; got {d.max_summary_tokens}.")
        prefix = {"prompt": m.prompt_length, "prefix": m.prefix_length}.get(m.method, 0)
        # room for at least a few article tokens besides the prompt, summary and EOS (separator counted later)
        needed = prefix + d.max_summary_tokens + 1 + MIN_ARTICLE_TOKENS
        _check(d.max_length >= needed,
               f"--max-length {d.max_length} leaves no room for the article: the soft prompt or prefix ({prefix}), "
               f"summary ({d.max_summary_tokens}) and EOS need {needed - MIN_ARTICLE_TOKENS}, plus at least "
               f"{MIN_ARTICLE_TOKENS} article tokens; lower --prompt-length, --prefix-length or --max-summary-tokens.")
        d.split_sizes()
        d.ratios()
        for split in ("train", "validation", "test"):
            _check(bool(getattr(d, f"{split}_split").strip()),
                   f"--{split}-split must name a split of the dataset, like {split!r}; got an empty name.")
        _check(self.max_epochs() >= 1, f"--epochs must be at least 1; got {t.epochs}.")
        _check(t.max_steps is None or t.max_steps >= 1, f"--max-steps must be at least 1; got {t.max_steps}.")
        _check(t.batch_size >= 1, f"--batch-size must be at least 1; got {t.batch_size}.")
        _check(t.grad_accum >= 1, f"--grad-accum must be at least 1; got {t.grad_accum}.")
        _check(math.isfinite(self.peak_lr()) and self.peak_lr() > 0, f"--lr must be a positive number; got {t.lr}.")
        _check(0 <= t.min_lr_ratio <= 1, f"--min-lr-ratio must be in [0, 1]; got {t.min_lr_ratio}.")
        _check(0 <= t.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1); got {t.warmup_ratio}.")
        _check(math.isfinite(t.weight_decay) and t.weight_decay >= 0,
               f"--weight-decay must be 0 or more; got {t.weight_decay}.")
        _check(t.max_grad_norm >= 0, f"--max-grad-norm must be 0 (off) or more; got {t.max_grad_norm}.")
        _check(t.eval_every is None or t.eval_every >= 1, f"--eval-every must be at least 1; got {t.eval_every}.")
        _check(t.eval_batches is None or t.eval_batches >= 1,
               f"--eval-batches must be at least 1; got {t.eval_batches}.")
        _check(t.patience >= 1, f"--patience must be at least 1 (evaluations without improvement); got {t.patience}.")
        _check(t.log_every >= 1, f"--log-every must be at least 1; got {t.log_every}.")
        check_seed(t.seed)


MIN_ARTICLE_TOKENS = 16
MAX_SEED = 2**32 - 1  # numpy's generators take seeds up to here; torch's and Python's take these too


def check_seed(seed: int) -> None:
    _check(0 <= seed <= MAX_SEED, f"--seed must be a whole number from 0 to {MAX_SEED:,}; got {seed}.")
REQUIRED_KEYS = {"model": ("model",), "data": ("data",), "method": ("method",)}
TYPE_WORDS = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
              "str | None": "text or null", "int | None": "a whole number or null", "float | None": "a number or null"}


def has_type(value, annotation: str) -> bool:
    """Does a JSON value fit a field annotated `annotation` ("int", "float | None", ...)?"""
    if value is None:
        return annotation.endswith("| None")
    kind = annotation.split(" |")[0]
    if kind == "bool" or isinstance(value, bool):
        return kind == "bool" and isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int)
    if kind == "float":
        return isinstance(value, (int, float))
    return isinstance(value, str)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise MinisummError(message)


def _size(value: str, flag: str) -> int | None:
    if str(value).lower() == "all":
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise MinisummError(f"--{flag} must be a positive number of examples or 'all'; got {excerpt(value)}.")
    return size


def add_arguments(parser: argparse.ArgumentParser, section_cls, skip: tuple[str, ...] = (),
                  only: tuple[str, ...] | None = None) -> None:
    """Add one flag per dataclass field (`lora_rank` -> `--lora-rank`), with its help and its default,
    stated once; `only` names the fields to add when not all of them."""
    group = parser.add_argument_group(section_cls.__name__.replace("Config", "").lower())
    for f in dataclasses.fields(section_cls):
        if f.name in skip or (only is not None and f.name not in only):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            action = group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(f.type), str)
            action = group.add_argument(flag, dest=f.name, type=kind, default=f.default,
                                        choices=f.metadata.get("choices"))
        action.help = help_with_default(f)  # set after: Python 3.10's BooleanOptionalAction adds its own


def help_with_default(f: dataclasses.Field) -> str:
    """The field's help, ending in "(default: X)" unless it already says what the default is."""
    text = f.metadata["help"]
    if "default" not in text.lower():
        if f.default is None:
            raise ValueError(f"the help of {f.name} must say what its default, None, means")
        shown = ("on" if f.default else "off") if isinstance(f.default, bool) else repr(f.default)
        text = f"{text} (default: {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


def section_from_args(args: argparse.Namespace, section_cls):
    """One settings dataclass (e.g. DecodeConfig) from parsed flags that `add_arguments` made for it."""
    return section_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(section_cls)})


def from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """Fill a RunConfig from parsed flags; flags a parser did not define keep `base`'s values."""
    config = base or RunConfig()
    for section in dataclasses.fields(RunConfig):
        part = getattr(config, section.name)
        for f in dataclasses.fields(part):
            if hasattr(args, f.name):
                setattr(part, f.name, getattr(args, f.name))
    return config


@dataclass
class DecodeConfig:
    """How summaries are decoded: evaluate, summarize and the Hugging Face export's generation_config share it."""
    beams: int = field(default=1, metadata=_help("Beam width (1 = greedy)."))
    max_new_tokens: int = field(default=128, metadata=_help("Longest summary, in tokens."))
    min_new_tokens: int = field(default=0, metadata=_help("Shortest summary before EOS is allowed."))
    no_repeat_ngram: int = field(default=3, metadata=_help("Ban repeating n-grams of this size (0: off)."))
    length_penalty: float = field(default=1.0, metadata=_help("Beam score = log-probability / length**this."))

    def validate(self) -> None:
        for flag, value, low in (("--beams", self.beams, 1), ("--max-new-tokens", self.max_new_tokens, 1),
                                 ("--min-new-tokens", self.min_new_tokens, 0),
                                 ("--no-repeat-ngram", self.no_repeat_ngram, 0)):
            _check(value >= low, f"{flag} must be at least {low}; got {value}.")
        _check(math.isfinite(self.length_penalty),
               f"--length-penalty must be a finite number (1.0: no preference); got {self.length_penalty}.")
        _check(self.min_new_tokens <= self.max_new_tokens,
               f"--min-new-tokens ({self.min_new_tokens}) cannot exceed --max-new-tokens ({self.max_new_tokens}).")
