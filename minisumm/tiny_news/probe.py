"""The copying probe: can a language model repeat a name or a number that it has just read?

A summary copies names and numbers out of its article, so a base model that cannot copy leaves nothing for
a soft prompt or a low-rank update to steer. The probe measures the skill directly, on the base model, with
no fine-tuning. Each probe text is the opening of an unseen generated article with one sentence said
before it and again after it, holding a random name (a first name and a surname the article does not
hold) or a random number (1,000 to 99,999):

    The first report came from Priya Okafor. <article opening, <=160 tokens> The first report came from Priya Okafor.
                               ^^^^^^^^^^^^ first                                                   ^^^^^^^^^^^^ second

The loss is the mean cross-entropy (nats) of the value's tokens after its first: once "Priya" is written,
only an earlier occurrence says that "Okafor" follows (the first token is left out because a model may
also guess it from the names of the article, which is not copying this value). The first time, nothing
in the text predicts them: the loss is what the model guesses about surnames or digits in general. The
second time, a model that copies finds the earlier occurrence and predicts them almost surely: this is
the loss on repeated tokens by which Olsson et al. 2022 ("In-context Learning and Induction Heads") see
induction heads form. The *copy gain* is first − second: about 0 for a model that cannot copy (a random
one, or a model trained too briefly), several nats for one that copies.
"""

from __future__ import annotations

import random

import torch

from minisumm.metrics import split_sentences
from minisumm.tiny_news import synthetic_news

PROBE_SEED = 9_100_000  # far from the sample's and the pretraining corpus' seeds
ARTICLE_TOKENS = 160  # the article between the two mentions is cut to this: every position stays under 256
MIN_POSITIONS = 256  # a model with fewer positions (a test-sized build) cannot read a probe text
CARRIERS = {  # the sentence said before the article and again after it, with {} where the value goes
    "name": "The first report came from {}.",
    "number": "Officials counted {} visitors.",
}


def _opening(tokenizer, article: str, budget: int) -> str:
    """The article's first sentences, as many as fit in `budget` tokens (at least one)."""
    sentences = split_sentences(article)
    kept = sentences[:1]
    for sentence in sentences[1:]:
        if len(tokenizer(" ".join(kept + [sentence]), add_special_tokens=False)["input_ids"]) > budget:
            break
        kept.append(sentence)
    return " ".join(kept)


def probe_texts(n: int = 32, seed: int = PROBE_SEED) -> list[tuple[str, str, str, str, str]]:
    """`2n` probes `(kind, before, article, after, value)`: a name and a number for each of n articles."""
    r = random.Random(seed)
    probes = []
    for story in synthetic_news.stories(seed, n):
        while True:  # a name the article does not hold
            name = f"{r.choice(synthetic_news.FIRST)} {r.choice(synthetic_news.LAST)}"
            if name.split()[-1] not in story.article:
                break
        for kind, value in (("name", name), ("number", f"{r.randint(1000, 99_999):,}")):
            probes.append((kind, CARRIERS[kind], story.article, CARRIERS[kind], value))
    return probes


@torch.no_grad()
def copying_probe(model, tokenizer, n: int = 32, seed: int = PROBE_SEED) -> dict:
    """`{"name": {"first", "second", "gain"}, "number": {...}, "gain": mean gain}`, losses in nats per token."""
    if model.config.n_positions < MIN_POSITIONS:
        raise ValueError(f"the copying probe needs a model with at least {MIN_POSITIONS} positions")
    was_training = model.training
    model.eval()
    losses: dict[str, list[tuple[float, float]]] = {kind: [] for kind in CARRIERS}
    for kind, before, article, after, value in probe_texts(n, seed):
        # Built piece by piece to know where the value's tokens are; every piece boundary is a word boundary,
        # where GPT-2's byte-level pre-tokenisation splits anyway, so the ids equal those of the whole text.
        head, tail = before.split("{}")
        middle, end = after.split("{}")
        article = _opening(tokenizer, article, ARTICLE_TOKENS)
        pieces = [head.rstrip(), " " + value, tail + " " + article + " " + middle.rstrip(), " " + value, end]
        ids = [tokenizer(piece, add_special_tokens=False)["input_ids"] for piece in pieces]
        starts = [sum(len(p) for p in ids[:i]) for i in range(len(ids) + 1)]
        flat = torch.tensor([[token for piece in ids for token in piece]])  # (1, T)
        logprobs = torch.log_softmax(model(input_ids=flat).logits[0].float(), dim=-1)  # (T, V)

        def span_loss(start: int, stop: int) -> float:  # mean -log p of tokens start..stop-1, each from before it
            positions = torch.arange(max(start, 1), stop)
            return float(-logprobs[positions - 1, flat[0, positions]].mean())
        # The value's tokens after its first: once "Priya" is given, only the earlier occurrence says "Okafor"
        # (the first token can also be guessed from the article, which names other people: not copying).
        losses[kind].append((span_loss(starts[1] + 1, starts[2]), span_loss(starts[3] + 1, starts[4])))
    model.train(was_training)
    result = {}
    for kind, pairs in losses.items():
        first = sum(p[0] for p in pairs) / len(pairs)
        second = sum(p[1] for p in pairs) / len(pairs)
        result[kind] = {"first": round(first, 4), "second": round(second, 4), "gain": round(first - second, 4)}
    result["gain"] = round(sum(result[kind]["gain"] for kind in CARRIERS) / len(CARRIERS), 4)
    return result
