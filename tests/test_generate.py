"""Hand-written decoding against independent references: uncached argmax over transformers' own forward,
transformers' `generate` (greedy and beam search), and hand-checked properties (EOS, min length, n-grams,
input order, one host wait per generated token).

Tests run on the tiny-random architecture with weights redrawn here (`lively_model`): greedy outputs vary
and ordinary tokens turn up often enough to serve as "EOS" at different steps in different rows.
"""

import pytest
import torch

from host_syncs import HostSyncs
from minisumm import generate as generate_module
from minisumm.config import MethodConfig
from minisumm.errors import MinisummError
from minisumm.tools.beam_search import beam_search, with_beams
from minisumm.tools.decoding import ready_to_decode, summarize
from minisumm.generate import decode_texts, generate, greedy, left_pad, repeated_ngram_ban
from transformers import DynamicCache, GPT2LMHeadModel

from minisumm.tools.loading import load_model_and_tokenizer
from minisumm.tools.loading import tiny_random_config

NEVER = 256  # the tiny model's real EOS: the lively model never produces it in these tests
LENGTHS = (5, 12, 9, 20, 3, 7)


def lively_model():
    """The tiny-random architecture with its weight matrices redrawn from N(0, 0.16²), seeded: wide enough
    that greedy outputs vary, narrow enough that logits are not saturated (near-ties stay rare). Drawn here
    rather than taken from tiny-random, so these tests do not depend on its initialisation (nor on its
    number of positions: 1,024 here, so the draws and the outputs they give stay fixed)."""
    config = tiny_random_config()
    config.n_positions = 1024
    model = GPT2LMHeadModel(config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.16)
    return model


def random_prompts(lengths=LENGTHS, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (n,), generator=generator).tolist() for n in lengths]


def with_method(model, method: str, merged: bool = False):
    """Apply LoRA, a soft prompt or a prefix and push its weights far enough from zero to change the outputs."""
    from minisumm import methods

    generator = torch.Generator().manual_seed(1)
    config = MethodConfig(method=method, prompt_length=4, prefix_length=4, prompt_init="random", lora_dropout=0.0)
    torch.manual_seed(0)
    methods.apply(model, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or "soft_prompt" in name or "prefix" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * (0.5 if "lora_B" in name else 3.0))
    if merged:
        methods.merge(model)
    return model


def uncached_greedy(model, prompt, max_new_tokens, eos_id=NEVER):
    """Argmax of transformers' own forward over the whole sequence at every step: no cache of the text, no
    padding (a prefix goes in as PEFT passes it: as the cache GPT-2 starts from, the text at positions P, ...)."""
    ids, out = list(prompt), []
    soft_prompt, prefix = getattr(model, "soft_prompt", None), getattr(model, "prefix", None)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            embeds = model.transformer.wte(torch.tensor([ids]))  # (1, T, C)
            if soft_prompt is not None:
                embeds = torch.cat([soft_prompt.embedding[None], embeds], dim=1)  # positions 0..P+T-1
            cache = prefix.cache(1, into=DynamicCache(config=model.config)) if prefix is not None else None
            token = int(model(inputs_embeds=embeds, cache=cache).logits[0, -1].argmax())
            if token == eos_id:
                break
            out.append(token)
            ids.append(token)
    return out


def decode(model, prompts, num_beams=1, length_penalty=1.0, **settings):
    """`generate` with greedy search, or beam search for more than one beam (as `minisumm.tools.decoding`)."""
    search = greedy if num_beams == 1 else with_beams(num_beams, length_penalty)
    return generate(model, prompts, search=search, **settings)


@pytest.mark.parametrize("method, merged", [(None, False), ("lora", False), ("lora", True), ("prompt", False),
                                           ("prefix", False)])
def test_cached_batched_greedy_equals_uncached_one_at_a_time(method, merged):
    model = lively_model()
    if method:
        model = with_method(model, method, merged)
    prompts = random_prompts()
    ours = generate(model, prompts, eos_id=NEVER, pad_id=NEVER, max_new_tokens=16, no_repeat_ngram=0)
    reference = [uncached_greedy(model, p, 16) for p in prompts]
    assert ours == reference
    assert len({tuple(o) for o in ours}) == len(prompts)  # the outputs differ: the check is not vacuous


@pytest.mark.parametrize("method", ["lora", "prompt", "prefix"])
def test_methods_change_the_output(method):
    prompts = random_prompts()
    plain = generate(lively_model(), prompts, eos_id=NEVER, pad_id=NEVER, max_new_tokens=12)
    adapted = generate(with_method(lively_model(), method), prompts, eos_id=NEVER, pad_id=NEVER,
                       max_new_tokens=12)
    assert sum(a != b for a, b in zip(plain, adapted)) >= len(prompts) // 2


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize("method", [None, "prompt", "prefix"])
def test_batched_equals_one_at_a_time(num_beams, method):
    model = lively_model()
    if method:
        model = with_method(model, method)
    prompts = random_prompts()
    settings = dict(eos_id=255, pad_id=NEVER, max_new_tokens=12, num_beams=num_beams)
    together = decode(model, prompts, **settings)
    assert decode(model, prompts, batch_size=4, **settings) == together
    assert [decode(model, [p], **settings)[0] for p in prompts] == together


NEAR_TIE_NATS = 0.1  # bf16 keeps 8 significant bits: logits of a few units move by ~0.01-0.03


@pytest.mark.parametrize("method", [None, "prompt"])
def test_bf16_decoding_keeps_the_cache_in_bf16_and_departs_from_fp32_only_at_near_ties(method, monkeypatch):
    """The model cast to bf16 (as evaluate.py decodes in bf16): every cached key and value is bf16, the soft
    prompt included, and where bf16 greedy first picks another token than fp32 greedy, fp32 itself (through
    transformers' forward, uncached) rated the two tokens within NEAR_TIE_NATS."""
    import copy

    from minisumm import generate as generate_module

    model = lively_model()
    if method:
        model = with_method(model, method)
    prompts = random_prompts((5, 12, 9, 20, 3, 7, 15, 30, 11, 25, 4, 18), seed=2)
    settings = dict(eos_id=NEVER, pad_id=NEVER, max_new_tokens=24, no_repeat_ngram=0)
    fp32 = generate(model, prompts, **settings)

    cache_dtypes = set()
    real_body = generate_module.body

    def recording_body(*args, **kwargs):
        hidden, mask, cache = real_body(*args, **kwargs)
        cache_dtypes.update(t.dtype for layer in cache.layers for t in (layer.keys, layer.values))
        return hidden, mask, cache

    monkeypatch.setattr(generate_module, "body", recording_body)
    bf16 = generate(copy.deepcopy(model).to(torch.bfloat16), prompts, **settings)
    assert cache_dtypes == {torch.bfloat16}

    soft_prompt = getattr(model, "soft_prompt", None)
    identical, margins = 0, []
    for prompt, a, b in zip(prompts, fp32, bf16):
        step = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        if step is None:
            identical += a == b
            continue
        with torch.no_grad():
            embeds = model.transformer.wte(torch.tensor([prompt + a[:step]]))
            if soft_prompt is not None:
                embeds = torch.cat([soft_prompt.embedding[None], embeds], dim=1)
            log_probs = model(inputs_embeds=embeds).logits[0, -1].log_softmax(-1)
        margins.append(float(log_probs[a[step]] - log_probs[b[step]]))
    assert margins and max(margins) < NEAR_TIE_NATS, margins  # they do depart, and only at near-ties
    assert identical >= len(prompts) // 3


def _hf_generate(model, prompts, eos_id, **kwargs):
    input_ids, attention_mask = left_pad(prompts, NEVER, "cpu")
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                         pad_token_id=NEVER, eos_token_id=eos_id, **kwargs)
    rows = [row[input_ids.shape[1]:].tolist() for row in out]
    return [row[:row.index(eos_id)] if eos_id in row else [t for t in row if t != NEVER] for row in rows]


@pytest.mark.parametrize("eos_id", [255, 137])
@pytest.mark.parametrize("num_beams, length_penalty", [(1, 1.0), (3, 1.0), (4, 0.7), (4, 2.0)])
def test_matches_transformers_generate(eos_id, num_beams, length_penalty):
    """Greedy and beam search (early_stopping=True) equal transformers' on a left-padded batch."""
    model = lively_model()
    prompts = random_prompts()
    ours = decode(model, prompts, eos_id=eos_id, pad_id=NEVER, max_new_tokens=20, num_beams=num_beams,
                  length_penalty=length_penalty, no_repeat_ngram=0)
    theirs = _hf_generate(model, prompts, eos_id, max_new_tokens=20, num_beams=num_beams,
                          length_penalty=length_penalty, early_stopping=True)
    assert ours == theirs
    assert any(len(o) < 20 for o in ours) or length_penalty > 1  # EOS ended some (a penalty > 1 favours length)


def test_beam_search_with_one_beam_is_greedy():
    model = lively_model()
    prompts = random_prompts()
    settings = dict(eos_id=255, max_new_tokens=20, min_new_tokens=3, no_repeat_ngram=2)
    input_ids, attention_mask = left_pad(prompts, NEVER, "cpu")
    with torch.inference_mode():  # the beam loop itself, with one beam
        beam = beam_search(model, input_ids, attention_mask, num_beams=1, length_penalty=1.0, **settings)
    greedy = generate(model, prompts, pad_id=NEVER, **settings)
    assert beam == greedy
    assert len({len(g) for g in greedy}) > 1


def _sum_log_prob(model, prompt, continuation):
    ids = torch.tensor([prompt + continuation])
    with torch.no_grad():
        log_probs = model(input_ids=ids).logits[0, :-1].log_softmax(-1)  # (T-1, V)
    targets = ids[0, len(prompt):]
    return float(log_probs[len(prompt) - 1:].gather(-1, targets[:, None]).sum())


def test_beam_search_scores_at_least_greedy():
    """With no EOS every hypothesis has the same length, so the score is the summed log-prob."""
    model = lively_model()
    prompts = random_prompts()
    settings = dict(eos_id=NEVER, pad_id=NEVER, max_new_tokens=10, no_repeat_ngram=0)
    greedy = generate(model, prompts, **settings)
    beam = decode(model, prompts, num_beams=5, **settings)
    greedy_scores = [_sum_log_prob(model, p, g) for p, g in zip(prompts, greedy)]
    beam_scores = [_sum_log_prob(model, p, b) for p, b in zip(prompts, beam)]
    assert all(b >= g - 1e-4 for b, g in zip(beam_scores, greedy_scores))
    assert any(b > g + 1e-3 for b, g in zip(beam_scores, greedy_scores))  # beams found something better


def _ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("num_beams", [1, 3])
def test_no_repeated_ngrams(num_beams):
    model = lively_model()
    prompts = random_prompts()
    settings = dict(eos_id=NEVER, pad_id=NEVER, max_new_tokens=30, num_beams=num_beams)
    free = decode(model, prompts, no_repeat_ngram=0, **settings)
    assert any(len(set(_ngrams(o, 3))) < len(_ngrams(o, 3)) for o in free)  # repeats happen without the ban
    for n in (2, 3):
        for out in decode(model, prompts, no_repeat_ngram=n, **settings):
            assert len(out) == 30 and len(set(_ngrams(out, n))) == len(_ngrams(out, n))


def repeated_ngram_tokens(history: list[int], n: int) -> set[int]:
    """By hand: the tokens that, appended to `history`, would complete an n-gram already in it."""
    ngrams = {tuple(history[i:i + n]) for i in range(len(history) - n + 1)}
    return {gram[-1] for gram in ngrams if list(gram[:-1]) == history[len(history) - n + 1:]}


def test_repeated_ngram_tokens_by_hand():
    assert repeated_ngram_tokens([1, 2, 3, 1, 2], 3) == {3}
    assert repeated_ngram_tokens([1, 2, 3, 1, 2, 4, 1, 2], 3) == {3, 4}
    assert repeated_ngram_tokens([5, 6], 3) == set()
    assert repeated_ngram_tokens([7, 8, 7], 2) == {8}
    assert repeated_ngram_tokens([7, 8], 1) == {7, 8}


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_the_device_side_ngram_ban_bans_what_the_history_repeats(n):
    """Rows drawn from a 4-token alphabet repeat n-grams often; each row's ban is the set worked out by hand."""
    generator = torch.Generator().manual_seed(n)
    for length in (0, n - 1, n, 9, 30):
        generated = torch.randint(0, 4, (6, length), generator=generator)  # (B, S)
        banned = repeated_ngram_ban(generated, n, 10) if length >= n else torch.zeros(6, 10, dtype=torch.bool)
        assert banned.shape == (6, 10)
        for row, history in zip(banned, generated.tolist()):
            assert set(row.nonzero().flatten().tolist()) == repeated_ngram_tokens(history, n)
    assert banned.any()  # the long rows did repeat themselves


def test_eos_stops_each_row_where_it_first_appears():
    model = lively_model()
    prompts = random_prompts()
    full = generate(model, prompts, eos_id=NEVER, pad_id=NEVER, max_new_tokens=25, no_repeat_ngram=0)
    eos = 137  # an ordinary token the lively model emits in some rows, at different steps
    stopped = generate(model, prompts, eos_id=eos, pad_id=NEVER, max_new_tokens=25, no_repeat_ngram=0)
    assert stopped == [row[:row.index(eos)] if eos in row else row for row in full]
    assert len({len(s) for s in stopped}) > 2


def test_min_new_tokens_holds_back_eos():
    model = lively_model()
    prompts = random_prompts()
    settings = dict(eos_id=137, pad_id=NEVER, max_new_tokens=20, no_repeat_ngram=0)
    free = generate(model, prompts, **settings)
    assert min(len(o) for o in free) < 6  # some rows end early on their own
    for num_beams in (1, 3):
        held = decode(model, prompts, min_new_tokens=6, num_beams=num_beams, **settings)
        assert all(len(o) >= 6 and 137 not in o for o in held)


def test_generate_restores_mode_and_checks_arguments():
    model = lively_model().train()
    assert generate(model, [[1, 2]], eos_id=NEVER, pad_id=NEVER, max_new_tokens=0) == [[]]
    generate(model, [[1, 2]], eos_id=NEVER, pad_id=NEVER, max_new_tokens=2)
    assert model.training
    with pytest.raises(MinisummError, match="empty"):
        generate(model, [[1], []], eos_id=NEVER, pad_id=NEVER)
    with pytest.raises(MinisummError, match="positions"):
        generate(model, [[1] * 1000], eos_id=NEVER, pad_id=NEVER, max_new_tokens=30)
    with pytest.raises(MinisummError, match="num_beams"):
        decode(model, [[1]], eos_id=NEVER, pad_id=NEVER, num_beams=0)


def test_decode_texts_strips_and_drops_eos():
    _, tokenizer = load_model_and_tokenizer("tiny-random")
    ids = [tokenizer.encode(" Hello there. "), tokenizer.encode("Bye") + [tokenizer.eos_token_id]]
    assert decode_texts(tokenizer, ids) == ["Hello there.", "Bye"]


def test_summarize_keeps_input_order_and_matches_one_at_a_time():
    from minisumm.batching import encode_prompt
    from minisumm.config import DataConfig, DecodeConfig

    model = lively_model()
    _, tokenizer = load_model_and_tokenizer("tiny-random")
    data_cfg = DataConfig(max_length=96, separator=" TL;DR: ")
    articles = ["Short one.", "A much longer article about the weather in the north. " * 3, "Medium length text here."]
    finished = []  # what a progress bar would be told: prompts per finished batch
    texts = summarize(model, tokenizer, articles, data_cfg, 0, DecodeConfig(max_new_tokens=10, beams=2),
                      batch_size=2, progress=finished.append)
    assert finished == [2, 1]
    expected = []
    for article in articles:
        prompt = encode_prompt(tokenizer, article, data_cfg, 0, 10)
        expected += decode_texts(tokenizer, decode(model, [prompt], eos_id=tokenizer.eos_token_id,
                                                   pad_id=tokenizer.pad_token_id, max_new_tokens=10, num_beams=2))
    assert texts == expected
    assert len(set(texts)) == 3


@pytest.mark.parametrize("method", [None, "prefix"])
def test_greedy_waits_for_the_device_at_most_once_per_generated_token(method, monkeypatch):
    """Counted on CPU with a dispatch mode (tests/host_syncs.py): between one decode step and the next, at most
    one point where a GPU's host would wait (rows finishing at different steps, the n-gram ban and the
    minimum length all in play). The prefill runs once per batch and is not counted."""
    model = lively_model()
    if method:
        model = with_method(model, method)
    prompts = random_prompts((5, 12, 9, 20, 3, 7, 15, 30))
    marks = []
    real_step = generate_module.decode_step

    def marking_step(*args, **kwargs):
        marks.append(syncs.count)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(generate_module, "decode_step", marking_step)
    with HostSyncs() as syncs:
        out = generate(model, prompts, eos_id=137, pad_id=NEVER, max_new_tokens=25, min_new_tokens=2,
                       no_repeat_ngram=3)
        marks.append(syncs.count)
    assert len({len(o) for o in out}) > 2 and max(len(o) for o in out) == 25  # rows ended at different steps
    per_token = [b - a for a, b in zip(marks, marks[1:])]
    assert len(per_token) == 25 - 1 and max(per_token) <= 1, (per_token, syncs.events)


def test_batches_hold_similar_lengths_and_outputs_come_back_in_input_order():
    """Unsorted prompts, three at a time: each batch holds neighbours in length order (longest first), and
    the outputs, greedy and beam, equal decoding each prompt alone, in the order given."""
    model = lively_model()
    lengths = (7, 30, 3, 18, 12, 25, 5, 9)
    prompts = random_prompts(lengths)
    for num_beams in (1, 3):
        search = greedy if num_beams == 1 else with_beams(num_beams)
        batches = []

        def recording_search(model, input_ids, attention_mask, **settings):
            batches.append(attention_mask.sum(-1).tolist())
            return search(model, input_ids, attention_mask, **settings)

        settings = dict(eos_id=137, pad_id=NEVER, max_new_tokens=10)
        together = generate(model, prompts, batch_size=3, search=recording_search, **settings)
        assert batches == [[30, 25, 18], [12, 9, 7], [5, 3]]
        assert together == [generate(model, [p], search=search, **settings)[0] for p in prompts]
        assert len({tuple(o) for o in together}) == len(prompts)


def test_rows_that_finish_leave_the_batch_without_changing_anyone_s_tokens():
    """Twelve rows ending at different steps (finished rows repeat EOS, then leave in groups): each equals the
    uncached argmax of transformers' forward on its prompt alone, stopped at its own EOS."""
    model = lively_model()
    prompts = random_prompts((5, 12, 9, 20, 3, 7, 15, 30, 11, 25, 4, 18), seed=3)
    ours = generate(model, prompts, eos_id=137, pad_id=NEVER, max_new_tokens=20, no_repeat_ngram=0)
    assert ours == [uncached_greedy(model, p, 20, eos_id=137) for p in prompts]
    assert len({len(o) for o in ours}) > 4  # many rows finished, at many steps


@pytest.mark.parametrize("method", [None, "lora"])
def test_decoding_with_the_fused_gelu_equals_transformers_gelu(method):
    """`ready_to_decode` (what evaluate.py and summarize decode with) swaps in the fused GELU: the same
    log-probs to float rounding and the same tokens as transformers' own GELU, LoRA merged or beside."""
    from minisumm.speedups.fused_gelu import TanhGELU

    plain = lively_model()
    if method:
        plain = with_method(plain, method)
    fused = with_method(lively_model(), method) if method else lively_model()
    ready_to_decode(fused, "fp32")
    assert all(isinstance(block.mlp.act, TanhGELU) for block in fused.transformer.h)
    assert not any(isinstance(block.mlp.act, TanhGELU) for block in plain.transformer.h)
    prompts = random_prompts()
    input_ids, attention_mask = left_pad(prompts, NEVER, "cpu")
    with torch.inference_mode():
        expected = generate_module.prefill(plain, input_ids, attention_mask)[0]
        got = generate_module.prefill(fused, input_ids, attention_mask)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    settings = dict(eos_id=137, pad_id=NEVER, max_new_tokens=16)
    assert generate(fused, prompts, **settings) == generate(plain, prompts, **settings)
