"""Pretrain `tiny-news`: a small GPT-2 that has read invented news, and learnt (weakly) to copy names from it.

    minisumm pretrain --out DIR          # rebuild the shipped model from its recipe (about an hour on 2 CPU cores)
    --model tiny-news                    # anywhere: the copy shipped in the package (minisumm/tiny_news/model/)

Parameter-efficient methods adapt a *pretrained* model (Lester et al. 2021; Hu et al. 2021): a soft prompt or
a low-rank update steers skills that are already in the weights. GPT-2's weights cannot be downloaded
everywhere, so minisumm brings a miniature of the real setting, the way nanoGPT's `shakespeare_char` lets
anyone watch a transformer learn. The skill that summarising leans on most is copying: a summary repeats
the names and numbers of its article. GPT-2 copies with *induction heads* (Olsson et al. 2022): a head
that finds the earlier occurrence of the current token and predicts what followed it, built from two
heads in consecutive layers. They form in a sudden phase change, after a number of training tokens that
grows with the batch: about 10^5.7 · √(batch × context) tokens (Aoyama et al. 2025, "Predicting the
Formation of Induction Heads"), and only where the text rewards copying. So the recipe is:

1. text where copying pays: `synthetic_news` articles (never their highlights, never the summary
   separator, never a story of the shipped `sample` dataset), each followed by `<|endoftext|>` as GPT-2's
   WebText documents were, written with `restate=True`: the lead's facts are said again later in the
   article (half the time word for word), and the main person is named in full again, as news copy does;
2. a tokenizer in which every name is one token: byte-level BPE (Sennrich et al. 2016, in GPT-2's form)
   trained on that text plus each first name, surname, town, day and month the generator can write, so
   that BPE merges each into a token of its own; copying a name is then one step of attention;
3. a model: GPT-2's architecture at 4 layers, 4 heads, 128 wide (1,383,168 parameters, 38% of them
   the 4,096-token embedding), trained as a causal language model on 512-token windows, 2 at a time: a small
   batch × context reaches the phase change in fewer tokens, and 512 trains every position fine-tuning
   uses;
4. long enough to pass the phase change, measured by the copying probe (`minisumm.tiny_news.probe`), which
   `pretrain.json` records through training beside the losses.

What it gave (the shipped build, 24,000 steps, 60 minutes on 2 CPU cores): validation loss 8.33 -> 0.59,
and a skill that came late and is only half there. For 14,400 steps the probe's gain stayed at zero for
names and *negative* for numbers (-0.1 to -1.3 nats): the generator gives every person and number of a
story a different value, so the text first teaches "a number already used will not come again". Then the
loss fell from 0.73 to 0.65 within 2,400 steps, the phase change, and the model began to complete a name
it had read (gain 1.74 nats at step 16,800, 2.68 at the end, though it wavered in between); numbers stayed
at about zero (0.08). The shipped model copies names, weakly, and not numbers, and fine-tuning shows it:
full fine-tuning learns the form of every highlight but writes names and numbers of its own (the README's
table). A base that copies both reliably needs more than this recipe: that is where the miniature stands.

Two things a frozen base cannot undo, learnt the hard way. *Dropout*: GPT-2 was pretrained with dropout
0.1 and is fine-tuned with it; this model was pretrained without, so its config says 0.0. Fine-tuned with
0.1, its residual stream is noise it never learnt to ignore, which full fine-tuning adapts to and prompt
tuning, prefix tuning and LoRA cannot (LoRA's best validation loss on the sample: 2.64 with it, 1.90
without, same 100 steps). *Unread tokens*: the corpus has no line break and no ";", so the separator's
"\n" and ";" and the line break between highlights are tokens the model never read; with tied
embeddings their rows were only ever pushed away (norm 3.0 against 0.9 for read tokens). Full
fine-tuning retrains them. Setting them to the mean row did not help LoRA (1.91 against 1.90), so the
shipped model keeps them as trained.

The build takes an hour on 2 CPU cores, too long for a first run, so the result is shipped in the package
(`minisumm/tiny_news/model/`, 5.5 MB of safetensors): `--model tiny-news` loads it at once, and the tests
check that its recorded recipe is the one this file builds and that a short rebuild follows its recorded
loss curve. The model knows the vocabulary and the shape of news copy, but has never seen a summary:
summarising has to come from fine-tuning, as for GPT-2 on CNN/DailyMail. Everything is seeded and runs the
same way every time on CPU; the folder is written under a temporary name and renamed into place, so an
interrupted build leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from minisumm.tiny_news import synthetic_news
from minisumm.tiny_news.probe import MIN_POSITIONS, copying_probe
from minisumm.tools import json_files
from minisumm.tools.atomic import check_writable, staged_folder
from minisumm.tools.console import library_bars
from minisumm.config import DataConfig
from minisumm.errors import MinisummError, run_cli, writing
from minisumm.tools.flags import FlagParser
from minisumm.tiny_news import EOS, TINY_NEWS
from minisumm.speedups.fused_gelu import use_fused_gelu
from minisumm.schedule import lr_at

SEPARATOR = DataConfig().separator  # the default summary separator: never in the pretraining text
CORPUS_SEED = 7_000_000  # far from the sample's seed; sample stories are also excluded explicitly
RECIPE_VERSION = "2"  # bump when the corpus, tokenizer or training code changes what gets built
CHECKS = 10  # validation loss and copying probe this many times over the run (and at step 0)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the pretrained weights (recorded in pretrain.json, hashed into its key)."""
    stories: int = 60_000
    restate: bool = True
    name_tokens: bool = True
    vocab_size: int = 4096
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 512
    block_size: int = 512
    batch_size: int = 2
    steps: int = 24_000
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.1
    seed: int = 0

    def check(self) -> None:
        """Refuse a recipe that cannot train, naming the flag (before any work is done)."""
        problems = [
            (self.stories >= 100, f"--stories must be at least 100; got {self.stories}"),
            (self.vocab_size >= 258, f"--vocab-size must be at least 258 (256 bytes, EOS and one merge); got "
                                     f"{self.vocab_size}"),
            (min(self.n_layer, self.n_head, self.n_embd) >= 1 and self.n_embd % self.n_head == 0,
             f"--n-layer, --n-head and --n-embd must be positive, --n-embd a multiple of --n-head; got "
             f"{self.n_layer}, {self.n_head}, {self.n_embd}"),
            (2 <= self.block_size <= self.n_positions,
             f"--block-size must be from 2 to --n-positions ({self.n_positions}); got {self.block_size}"),
            (self.batch_size >= 1 and self.steps >= 1,
             f"--batch-size and --steps must be at least 1; got {self.batch_size} and {self.steps}"),
            (0 < self.lr < math.inf and 0 <= self.min_lr_ratio <= 1 and self.weight_decay >= 0,
             f"--lr must be positive and finite, --min-lr-ratio in [0, 1], --weight-decay 0 or more; got "
             f"{self.lr}, {self.min_lr_ratio}, {self.weight_decay}"),
            (0 <= self.warmup_steps <= self.steps,
             f"--warmup-steps must be from 0 to --steps ({self.steps}); got {self.warmup_steps}"),
        ]
        for ok, message in problems:
            if not ok:
                raise MinisummError(message + ".")

    def key(self) -> str:
        text = json.dumps({"version": RECIPE_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def corpus(recipe: Recipe) -> list[str]:
    """The pretraining articles: none of the shipped sample's, no highlight, no separator."""
    from minisumm.data import SAMPLE_DIR

    shipped = {json.loads(line)["article"] for split in ("train", "validation", "test")
               for line in (SAMPLE_DIR / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()}
    articles = [story.article for story in synthetic_news.stories(CORPUS_SEED + recipe.seed, recipe.stories,
                                                                  exclude=shipped, restate=recipe.restate)]
    if any(SEPARATOR.strip() in article for article in articles):  # cannot happen with these templates
        raise AssertionError("a pretraining article contains the summary separator")
    return articles


def name_lexicon() -> list[str]:
    """Every name the generator writes as one word: first names, surnames, towns, days and months."""
    towns = [stem + ending for stem in synthetic_news.STEMS for ending in synthetic_news.ENDINGS]
    return synthetic_news.FIRST + synthetic_news.LAST + towns + synthetic_news.DAYS + synthetic_news.MONTHS


def train_tokenizer(articles: list[str], vocab_size: int, max_length: int, name_tokens: bool = False):
    """Byte-level BPE with GPT-2's pre-tokenisation, trained on the articles; EOS (`<|endoftext|>`) is id 0.

    With `name_tokens`, the training text also holds the name lexicon 1,000 times over (never the model's
    text: only what BPE counts), which makes every name frequent enough to be merged into one token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    lexicon = [" ".join(name_lexicon())] * 1000 if name_tokens else []
    backend.train_from_iterator(articles + lexicon, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, bos_token=EOS, unk_token=EOS)
    tokenizer.model_max_length = max_length
    return tokenizer


def model_config(recipe: Recipe, vocab_size: int, eos_id: int):
    """GPT-2's architecture, small, and no dropout anywhere: pretraining runs without it, and the saved config
    says so, as fine-tuning a frozen base with dropout it never met hurts (the module docstring has the
    numbers). `--dropout` still adds some for a run that wants it."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=vocab_size, n_positions=recipe.n_positions, n_embd=recipe.n_embd,
                      n_layer=recipe.n_layer, n_head=recipe.n_head, bos_token_id=eos_id, eos_token_id=eos_id,
                      attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0, summary_first_dropout=0.0)


def token_stream(tokenizer, articles: list[str]) -> torch.Tensor:
    """All articles as one 1-D stream of ids, each followed by EOS, as GPT-2 was trained."""
    ids = tokenizer(articles, add_special_tokens=False, verbose=False)["input_ids"]  # a stream: no length limit
    flat = [token for article in ids for token in (*article, tokenizer.eos_token_id)]
    return torch.tensor(flat, dtype=torch.long)


def pretrain(out: Path | None, recipe: Recipe = Recipe(), show_progress: bool = True,
             stop_after: int | None = None) -> tuple:
    """Build the tiny-news folder at `out`; return (model, tokenizer, report).

    `stop_after=N` runs only the recipe's first N steps (same schedule, same data) and writes nothing
    (`out` may be None): the tests compare that start with the shipped model's recorded curve."""
    from transformers import GPT2LMHeadModel

    recipe.check()
    started = time.perf_counter()
    articles = corpus(recipe)
    held_out = max(len(articles) // 100, 1)  # 1% of the stories, for the validation loss in the report
    tokenizer = train_tokenizer(articles[held_out:], recipe.vocab_size, recipe.n_positions, recipe.name_tokens)
    train_ids = token_stream(tokenizer, articles[held_out:])
    val_ids = token_stream(tokenizer, articles[:held_out])
    if len(val_ids) <= recipe.block_size:
        raise MinisummError(f"--stories {recipe.stories} holds fewer held-out tokens ({len(val_ids)}) than one "
                            f"--block-size window ({recipe.block_size}); give more stories or a smaller block.")
    steps = recipe.steps if stop_after is None else min(stop_after, recipe.steps)
    check_every = max(recipe.steps // CHECKS, 1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = GPT2LMHeadModel(model_config(recipe, len(tokenizer), tokenizer.eos_token_id))
        generator = torch.Generator().manual_seed(recipe.seed)
        use_fused_gelu(model)
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr, betas=(0.9, 0.95))
        checks = [] if stop_after else [check(model, tokenizer, val_ids, recipe, 0)]
        curve, window_losses = [], []
        model.train()
        bar = tqdm(range(steps), desc="pretrain tiny-news", disable=None if show_progress else True,
                   dynamic_ncols=True)  # None: drawn only when stderr is a terminal
        for step in bar:
            lr = lr_at(step, peak=recipe.lr, warmup_steps=recipe.warmup_steps, total_steps=recipe.steps,
                       min_lr=recipe.lr * recipe.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            starts = torch.randint(0, len(train_ids) - recipe.block_size - 1, (recipe.batch_size,),
                                   generator=generator)
            window = torch.stack([train_ids[s:s + recipe.block_size + 1] for s in starts.tolist()])  # (B, T+1)
            logits = model(input_ids=window[:, :-1]).logits  # (B, T, V)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            window_losses.append(loss.item())
            if (step + 1) % 10 == 0 or step + 1 == steps:  # the curve: mean training loss of every 10 steps
                curve.append([step + 1, round(sum(window_losses) / len(window_losses), 5)])
                bar.set_postfix(loss=f"{curve[-1][1]:.3f}", lr=f"{lr:.1e}")
                window_losses = []
            if stop_after is None and ((step + 1) % check_every == 0 or step + 1 == steps):
                checks.append(check(model, tokenizer, val_ids, recipe, step + 1))
        bar.close()

    report = {"name": TINY_NEWS, "recipe": dataclasses.asdict(recipe), "recipe_key": recipe.key(),
              "parameters": sum(p.numel() for p in model.parameters()), "pretraining_stories": len(articles),
              "pretraining_tokens": int(len(train_ids)), "tokens_seen": steps * recipe.batch_size * recipe.block_size,
              "seconds": round(time.perf_counter() - started, 1), "train_loss_curve": curve, "checks": checks}
    if stop_after is not None:
        return model.eval(), tokenizer, report
    report |= {"validation_loss_start": checks[0]["validation_loss"], "validation_loss_end": checks[-1]["validation_loss"],
               "copying_probe_start": checks[0]["copying_probe"], "copying_probe_end": checks[-1]["copying_probe"]}
    with writing(f"the {TINY_NEWS} folder {out}", "nothing was written there"), staged_folder(out) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "pretrain.json").write_text(json_files.dumps(report, indent=1) + "\n", encoding="utf-8")
    return model.eval(), tokenizer, report


def check(model, tokenizer, val_ids: torch.Tensor, recipe: Recipe, step: int) -> dict:
    """The validation loss and the copying probe at `step`, also as one line on stderr (the model is back in
    training mode after). A test-sized build with too few positions for the probe records it as null."""
    probe = copying_probe(model, tokenizer) if recipe.n_positions >= MIN_POSITIONS else None
    result = {"step": step, "validation_loss": round(validation_loss(model, val_ids, recipe.block_size), 5),
              "copying_probe": probe}
    model.train()
    print(f"step {step:>6,}/{recipe.steps:,} | validation loss {result['validation_loss']:.4f} | " +
          (f"copy gain {probe['gain']:.2f} nats (names {probe['name']['gain']:.2f}, numbers "
           f"{probe['number']['gain']:.2f})" if probe else "no copying probe (too few positions)"),
          file=sys.stderr, flush=True)
    return result


@torch.no_grad()
def validation_loss(model, ids: torch.Tensor, block_size: int) -> float:
    """Mean next-token loss over consecutive windows of the held-out stream."""
    model.eval()
    usable = (len(ids) - 1) // block_size * block_size
    inputs = ids[:usable].view(-1, block_size)  # (N, T)
    targets = ids[1:usable + 1].view(-1, block_size)
    total = 0.0
    for start in range(0, len(inputs), 16):
        logits = model(input_ids=inputs[start:start + 16]).logits
        total += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets[start:start + 16].flatten(),
                                                         reduction="sum"))
    model.train()
    return total / targets.numel()


def main(argv=None, prog: str = "python -m minisumm.tiny_news.pretrain") -> int:
    p = FlagParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="Folder to create (must not exist yet).")
    for f in dataclasses.fields(Recipe):
        if f.type in ("bool", bool):
            p.add_argument("--" + f.name.replace("_", "-"), default=f.default,
                           action=argparse.BooleanOptionalAction, help=f"(default: {f.default})")
        else:
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                           help=f"(default: {f.default})")
    p.add_argument("--no-progress", action="store_true", help="No progress bar (it is only drawn on a terminal).")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        raise MinisummError(f"--out {out} already exists; pretraining writes a new folder (remove it or pick "
                            f"another name).")
    check_writable(out.parent, "--out")
    recipe = Recipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe)})
    recipe.check()
    library_bars(not args.no_progress)  # transformers' "Writing model shards" bar: a terminal only, too
    print(f"Pretraining {TINY_NEWS} into {out} ({recipe.steps:,} steps) ...", file=sys.stderr, flush=True)
    _, _, report = pretrain(out, recipe, show_progress=not args.no_progress)
    start, end = report["copying_probe_start"], report["copying_probe_end"]
    copying = f", copy gain {start['gain']:.2f} -> {end['gain']:.2f} nats" if start and end else ""
    print(f"{TINY_NEWS}: {report['parameters']:,} parameters, validation loss {report['validation_loss_start']:.2f}"
          f" -> {report['validation_loss_end']:.2f}{copying} in {report['seconds'] / 60:.0f} min; saved in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
