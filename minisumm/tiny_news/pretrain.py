"""Pretrain `tiny-news`: a small GPT-2 that has read invented news, so that fine-tuning has something to adapt.

    python -m minisumm.tiny_news.pretrain --out DIR            # ~2-3 minutes on 2 CPU cores
    --model tiny-news                                # anywhere: built once into the cache, then reused

Parameter-efficient methods adapt a *pretrained* model (Lester et al. 2021; Hu et al. 2021): a soft prompt or
a low-rank update steers knowledge that is already in the weights. On a randomly initialised model there
is nothing to steer. GPT-2's weights cannot be downloaded everywhere, so minisumm builds a miniature of the
real setting on the spot, the way nanoGPT's `shakespeare_char` lets anyone watch a transformer learn:

1. text: `synthetic_news` articles (never their highlights, never the summary separator, never a story of
   the shipped `sample` dataset), each followed by `<|endoftext|>`, as GPT-2's WebText documents were;
2. a tokenizer: byte-level BPE (Sennrich et al. 2016, in GPT-2's byte-level form) trained on that text with
   the `tokenizers` library, 2,048 tokens: a story is ~4x fewer tokens than with raw bytes, so the same
   compute sees 4x more text;
3. a model: GPT-2's architecture at 4 layers, 4 heads, 128 wide (~1M parameters), trained as a causal
   language model (next-token prediction on 256-token windows) with AdamW, warmup + cosine;
4. a plain `save_pretrained` folder (model.safetensors, config.json, tokenizer files, pretrain.json with the
   recipe and the losses) that transformers loads without minisumm.

What it does not learn in 3 minutes: to copy. A summary copies names and numbers out of its article, and
GPT-2 does that with attention heads that find an earlier occurrence of a pattern and repeat what followed
("induction heads", Olsson et al. 2022), which form only after far more training than this. Continued
after an article, tiny-news writes fluent news copy with names and numbers of its own; fine-tuned, its
summaries have the right shape and the article's kind of words, but often the wrong facts. (We tried to
shortcut this, with stories repeated in other words and with a drill of repeated random tokens; neither
made the fine-tuned summaries copy in the time.)

So the model knows the vocabulary, the names and the shape of news copy, but has never seen a summary:
summarising has to come from fine-tuning, as for GPT-2 on CNN/DailyMail. Everything is seeded and runs the
same way every time on CPU; the folder is written under a temporary name and renamed into place, so an
interrupted build leaves nothing half-written, and a rerun simply starts again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from minisumm.tiny_news import synthetic_news
from minisumm.tools.atomic import check_writable
from minisumm.tools.atomic import staged_folder
from minisumm.tools.console import library_bars
from minisumm.config import DataConfig
from minisumm.errors import MinisummError, run_cli, writing
from minisumm.tools.flags import FlagParser
from minisumm.tools.loading import EOS, TINY_NEWS
from minisumm.speedups.fused_gelu import use_fused_gelu
from minisumm.schedule import lr_at

SEPARATOR = DataConfig().separator  # the default summary separator: never in the pretraining text
CORPUS_SEED = 7_000_000  # far from the sample's seed; sample stories are also excluded explicitly
RECIPE_VERSION = "1"  # bump when the corpus, tokenizer or training code changes what gets built


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the pretrained weights; its hash names the cached folder."""
    stories: int = 12_000
    vocab_size: int = 2048
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 512
    block_size: int = 256
    batch_size: int = 16
    steps: int = 400
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 25
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
    articles = [story.article for story in
                synthetic_news.stories(CORPUS_SEED + recipe.seed, recipe.stories, exclude=shipped)]
    if any(SEPARATOR.strip() in article for article in articles):  # cannot happen with these templates
        raise AssertionError("a pretraining article contains the summary separator")
    return articles


def train_tokenizer(articles: list[str], vocab_size: int, max_length: int):
    """Byte-level BPE with GPT-2's pre-tokenisation, trained on the articles; EOS (`<|endoftext|>`) is id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(articles, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, bos_token=EOS, unk_token=EOS)
    tokenizer.model_max_length = max_length
    return tokenizer


def model_config(recipe: Recipe, vocab_size: int, eos_id: int):
    """GPT-2's architecture, small. Residual and embedding dropout 0.1 as in GPT-2 for fine-tuning; no
    attention dropout, so attention runs PyTorch's fused kernel (pretraining itself runs without dropout)."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=vocab_size, n_positions=recipe.n_positions, n_embd=recipe.n_embd,
                      n_layer=recipe.n_layer, n_head=recipe.n_head, bos_token_id=eos_id, eos_token_id=eos_id,
                      attn_pdrop=0.0, resid_pdrop=0.1, embd_pdrop=0.1)


def token_stream(tokenizer, articles: list[str]) -> torch.Tensor:
    """All articles as one 1-D stream of ids, each followed by EOS, as GPT-2 was trained."""
    ids = tokenizer(articles, add_special_tokens=False, verbose=False)["input_ids"]  # a stream: no length limit
    flat = [token for article in ids for token in (*article, tokenizer.eos_token_id)]
    return torch.tensor(flat, dtype=torch.long)


def pretrain(out: Path, recipe: Recipe = Recipe(), show_progress: bool = True) -> tuple:
    """Build the tiny-news folder at `out` (which must not exist); return (model, tokenizer, report)."""
    from transformers import GPT2LMHeadModel

    recipe.check()
    started = time.perf_counter()
    articles = corpus(recipe)
    held_out = max(len(articles) // 50, 1)  # 2% of the stories, for a validation loss in the report
    tokenizer = train_tokenizer(articles[held_out:], recipe.vocab_size, recipe.n_positions)
    train_ids = token_stream(tokenizer, articles[held_out:])
    val_ids = token_stream(tokenizer, articles[:held_out])
    if len(val_ids) <= recipe.block_size:
        raise MinisummError(f"--stories {recipe.stories} holds fewer held-out tokens ({len(val_ids)}) than one "
                            f"--block-size window ({recipe.block_size}); give more stories or a smaller block.")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = GPT2LMHeadModel(model_config(recipe, len(tokenizer), tokenizer.eos_token_id))
        generator = torch.Generator().manual_seed(recipe.seed)
        for module in model.modules():  # no dropout while pretraining (the text is plentiful); the saved
            # config keeps GPT-2's 0.1 for fine-tuning, so model.set_dropout, which changes it, is not used
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        use_fused_gelu(model)
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr, betas=(0.9, 0.95))
        first_loss = validation_loss(model, val_ids, recipe.block_size)
        model.train()
        bar = tqdm(range(recipe.steps), desc="pretrain tiny-news", disable=True if not show_progress else None,
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
            if step % 10 == 0 or step == recipe.steps - 1:
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}")
        bar.close()
        final_loss = validation_loss(model, val_ids, recipe.block_size)
        train_loss = loss.item()

    report = {"name": TINY_NEWS, "recipe": dataclasses.asdict(recipe), "recipe_key": recipe.key(),
              "parameters": sum(p.numel() for p in model.parameters()), "pretraining_stories": len(articles),
              "pretraining_tokens": int(len(train_ids)), "tokens_seen": recipe.steps * recipe.batch_size *
              recipe.block_size, "validation_loss_start": first_loss, "validation_loss_end": final_loss,
              "train_loss_end": train_loss, "seconds": round(time.perf_counter() - started, 1)}
    with writing(f"the {TINY_NEWS} folder {out}", "nothing was written there"), staged_folder(out) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "pretrain.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return model.eval(), tokenizer, report


@torch.no_grad()
def validation_loss(model, ids: torch.Tensor, block_size: int) -> float:
    """Mean next-token loss over consecutive windows of the held-out stream."""
    model.eval()
    usable = (len(ids) - 1) // block_size * block_size
    inputs = ids[:usable].view(-1, block_size)  # (N, T)
    targets = ids[1:usable + 1].view(-1, block_size)
    total = 0.0
    for start in range(0, len(inputs), 32):
        logits = model(input_ids=inputs[start:start + 32]).logits
        total += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets[start:start + 32].flatten(),
                                                         reduction="sum"))
    model.train()
    return total / targets.numel()


def cache_root() -> Path:
    """Where minisumm keeps what it builds: $MINISUMM_CACHE, else ~/.cache/minisumm."""
    return Path(os.environ.get("MINISUMM_CACHE") or "~/.cache/minisumm").expanduser()


def cached_tiny_news(recipe: Recipe = Recipe()) -> Path:
    """The cached tiny-news folder, built on first use (one notice line and a progress bar)."""
    folder = cache_root() / "models" / f"{TINY_NEWS}-{recipe.key()}"
    if (folder / "config.json").is_file():
        return folder
    check_writable(folder.parent, "The minisumm cache (MINISUMM_CACHE)")  # before minutes of training
    print(f"Building {TINY_NEWS} (first use only, about 3 minutes on 2 CPU cores) into {folder} ...",
          file=sys.stderr, flush=True)
    pretrain(folder, recipe)  # two processes building at once both succeed: the builds are identical
    return folder


def main(argv=None, prog: str = "python -m minisumm.tiny_news.pretrain") -> int:
    p = FlagParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="Folder to create (must not exist yet).")
    for f in dataclasses.fields(Recipe):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                       help=f"(default: {f.default})")
    p.add_argument("--no-progress", action="store_true", help="No progress bar.")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        raise MinisummError(f"--out {out} already exists; pretraining writes a new folder (remove it or pick "
                            f"another name).")
    check_writable(out.parent, "--out")
    recipe = Recipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe)})
    recipe.check()
    library_bars(not args.no_progress)  # transformers' "Writing model shards" bar: a terminal only, too
    _, _, report = pretrain(out, recipe, show_progress=not args.no_progress)
    print(f"{TINY_NEWS}: {report['parameters']:,} parameters, validation loss {report['validation_loss_start']:.2f}"
          f" -> {report['validation_loss_end']:.2f} in {report['seconds']:.0f} s; saved in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
