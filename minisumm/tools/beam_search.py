"""Beam search over the KV-cached steps of `minisumm.generate`: `--beams K` instead of greedy decoding.

    generate(model, prompts, ..., search=with_beams(K, length_penalty))   instead of the default, greedy

Beam search (Graves 2012; Sutskever et al. 2014): beams are rows of the batch. A finished hypothesis
scores `sum of token log-probs / length ** length_penalty` (transformers' form; Wu et al. 2016 divide by
`((5 + length) / 6) ** alpha`), its length counting the generated tokens with the EOS. An example stops
when `num_beams` hypotheses have finished (transformers' `early_stopping=True`, the usual CNN/DM
setting); at the last step the live beams join the finished ones. Bans (min length, n-grams) apply to
log-probs, as in transformers. With `no_repeat_ngram=0` the result equals transformers' beam search
token for token (tested).
"""

from __future__ import annotations

import functools

import torch

from minisumm.errors import MinisummError
from minisumm.generate import ban_tokens, decode_step, prefill


def with_beams(num_beams: int, length_penalty: float = 1.0):
    """`minisumm.generate.generate`'s `search` for beam search with `num_beams` beams."""
    if num_beams < 1:
        raise MinisummError(f"num_beams must be at least 1; got {num_beams}.")
    return functools.partial(beam_search, num_beams=num_beams, length_penalty=length_penalty)


def beam_search(model, input_ids, attention_mask, *, num_beams, length_penalty, eos_id, max_new_tokens,
                 min_new_tokens, no_repeat_ngram):
    """Beam search of one left-padded batch; row `e * num_beams + k` holds beam k of example e."""
    beams = num_beams
    log_probs, full_mask, cache = prefill(model, input_ids, attention_mask)  # prompts run once, not per beam
    cache.batch_repeat_interleave(beams)
    log_probs = log_probs.repeat_interleave(beams, dim=0)  # (E*K, V)
    full_mask = full_mask.repeat_interleave(beams, dim=0)
    vocab = log_probs.shape[-1]
    examples = input_ids.shape[0]
    alive = list(range(examples))  # which example each remaining group of `beams` rows belongs to
    histories = [[] for _ in range(examples * beams)]  # tokens of each live beam
    generated = input_ids.new_empty((examples * beams, 0))  # (E*K, S): the same, on the device, for the bans
    # Only beam 0 is live at first: the others are copies and would fill the beam with duplicates.
    beam_scores = torch.full((examples, beams), float("-inf"), device=log_probs.device)
    beam_scores[:, 0] = 0.0
    finished = [[] for _ in range(examples)]  # (score, tokens) per example

    for step in range(max_new_tokens):
        last_step = step == max_new_tokens - 1
        ban_tokens(log_probs, generated, step, eos_id, min_new_tokens, no_repeat_ngram)
        scores = (beam_scores.view(-1, 1) + log_probs).view(len(alive), beams * vocab)  # (E, K*V)
        # 2K candidates always hold K that are not EOS (each beam offers one EOS at most).
        top_scores, top_index = scores.topk(2 * beams, dim=-1)  # (E, 2K)
        top_scores, top_index = top_scores.tolist(), top_index.tolist()
        next_rows, next_tokens, next_scores, next_histories, still_alive = [], [], [], [], []
        for group, example in enumerate(alive):
            continuations = []  # (row, token, score): the K best candidates that are not EOS
            for rank, (score, index) in enumerate(zip(top_scores[group], top_index[group])):
                row, token = group * beams + index // vocab, index % vocab
                if token != eos_id:
                    continuations.append((row, token, score))
                elif rank < beams and score > float("-inf"):  # only an EOS among the top K counts
                    finished[example].append((score / (step + 1) ** length_penalty, histories[row]))
                if len(continuations) == beams:
                    break
            if last_step:  # out of steps: the live beams compete with the finished hypotheses
                finished[example] += [(score / (step + 1) ** length_penalty, histories[row] + [token])
                                      for row, token, score in continuations if score > float("-inf")]
            elif len(finished[example]) < beams:  # early stopping: done once K hypotheses have finished
                still_alive.append(example)
                for row, token, score in continuations:
                    next_rows.append(row)
                    next_tokens.append(token)
                    next_scores.append(score)
                    next_histories.append(histories[row] + [token])
        alive, histories = still_alive, next_histories
        if not alive:
            break
        beam_index = torch.tensor(next_rows, device=log_probs.device)
        cache.reorder_cache(beam_index)  # beams follow their parents; finished examples leave
        full_mask = full_mask[beam_index]
        beam_scores = torch.tensor(next_scores, device=log_probs.device).view(len(alive), beams)
        tokens = torch.tensor(next_tokens, device=log_probs.device)
        generated = torch.cat([generated[beam_index], tokens[:, None]], dim=1)  # (E'*K, S+1)
        log_probs, full_mask, cache = decode_step(model, tokens, full_mask, cache)
    return [max(hypotheses, key=lambda h: h[0])[1] if hypotheses else [] for hypotheses in finished]
