"""The README.md model card written into every export: what the model is and how it is meant to be used.

A card states the method, the base model, the trainable parameters, the training data, the scores in the
run's `eval/metrics.json` when there are any, the prompt format (article + separator, the article cut at
its end to fit), the decoding settings of `generation_config.json`, and code that loads the export and
decodes exactly as minisumm does. The tests run the code of the transformers card without minisumm and
compare its summary with minisumm's; `benchmarks/check_peft.py` does the same for the PEFT card.

Why the card carries a logits processor: minisumm forbids a 3-gram from appearing twice in the summary
(`minisumm.generate`). transformers' `no_repeat_ngram_size` counts the prompt too, so on a decoder-only
model it would also forbid copying any 3 tokens of the article, which summaries do all the time. Nothing
in `generation_config.json` can say "the summary only", so it leaves the rule off and the card's
`NoRepeatInSummary` (4 lines over transformers' own processor) puts it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from minisumm import methods
from minisumm.config import DecodeConfig, RunConfig
from minisumm.metrics import ROUGE_NAMES
from minisumm.tools.loading import TINY_NEWS, TINY_RANDOM


NO_REPEAT_IN_SUMMARY = '''class NoRepeatInSummary(LogitsProcessor):
    """minisumm's rule: no {n}-gram twice in the summary (copying {n} tokens of the article stays allowed)."""
    def __init__(self, prompt_length, n={n}):
        self.prompt_length, self.ban = prompt_length, NoRepeatNGramLogitsProcessor(n)
    def __call__(self, input_ids, scores):
        return self.ban(input_ids[:, self.prompt_length:], scores)'''


@dataclass
class Facts:
    """What a card says about one export."""
    run: str                   # the run folder's name
    config: RunConfig          # the run's settings, as built
    trainable: int             # parameters trained
    total: int                 # parameters of the model as trained (base + method)
    metrics: dict | None       # the run's eval/metrics.json, if any
    decode: DecodeConfig       # the decoding settings written to generation_config.json
    separator_tokens: int      # tokens of config.data.separator
    n_positions: int           # the model's positions
    folder: str                # the export folder's name, as the card's code refers to it

    @property
    def prefix(self) -> int:
        return methods.prefix_tokens(self.config.method)

    @property
    def max_input_tokens(self) -> int:
        """Article + separator tokens that fit beside the soft prompt and `max_new_tokens`, as minisumm decodes."""
        return self.config.data.max_length - self.prefix - self.decode.max_new_tokens

    @property
    def max_article_tokens(self) -> int:
        return self.max_input_tokens - self.separator_tokens


def hf_card(facts: Facts) -> str:
    """The card of a plain transformers export (`--to hf`)."""
    code = _decode_code(facts, "from transformers import AutoTokenizer, GPT2LMHeadModel, LogitsProcessor, "
                               "NoRepeatNGramLogitsProcessor",
                        f'model = GPT2LMHeadModel.from_pretrained("{facts.folder}")')
    hole = facts.n_positions - facts.decode.max_new_tokens
    pipeline_code = (f'from transformers import pipeline\n\n'
                     f'generator = pipeline("text-generation", model="{facts.folder}")\n'
                     f'article = open("article.txt").read()\n'
                     f'result = generator(article + {json.dumps(facts.config.data.separator)}, '
                     f'handle_long_generation="hole", return_full_text=False)\n'
                     f'print(result[0]["generated_text"])')
    return "\n".join([
        _front_matter(facts, "transformers"),
        *_header(facts, "the whole trained model" + (", LoRA merged into its weights"
                                                      if facts.config.method.method == "lora" else "")),
        "## Use",
        "",
        f"The code reads this folder as `{facts.folder}` and the article from `article.txt`. Exactly as minisumm "
        f"decodes (article cut at its end, separator kept, minisumm's {facts.decode.no_repeat_ngram}-gram rule):",
        "",
        f"```python\n{code}\n```",
        "",
        f"With the text-generation pipeline (the settings of generation_config.json, without the "
        f"{facts.decode.no_repeat_ngram}-gram rule):",
        "",
        f"```python\n{pipeline_code}\n```",
        "",
        f'`handle_long_generation="hole"` keeps the last {hole} tokens of a longer prompt: the separator stays, '
        f"the article loses its beginning (minisumm cuts its end instead, as the first snippet does). Without "
        f"it, transformers gives the whole prompt to the model, and one longer than {facts.n_positions} tokens "
        f"(the model's positions) stops with an IndexError.",
        "",
    ])


def peft_card(facts: Facts, recorded: str, note: str, base_copy: str) -> str:
    """The card of a PEFT adapter export (`--to peft`): `recorded` is its base_model_name_or_path, `note` says
    why, `base_copy` is where the card's code loads the base from when passing it explicitly."""
    method = facts.config.method.method
    # PEFT 0.21 looks for the KV cache under generate's old name `past_key_values`; transformers 5 calls it
    # `cache`, so PEFT would insert the soft prompt again at every cached step, and a prefix's cached decoding
    # departs from minisumm's after a few tokens (benchmarks/check_peft.py). Without a cache both are right.
    no_cache = {"prompt": "use_cache=False)  # PEFT 0.21 + transformers 5: a cache would repeat the soft prompt",
                "prefix": "use_cache=False)  # PEFT 0.21 + transformers 5: with a cache it decodes other tokens",
                }.get(method, "")
    code = _decode_code(facts, "from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer, "
                               "GenerationConfig, LogitsProcessor, NoRepeatNGramLogitsProcessor",
                        f'model = AutoPeftModelForCausalLM.from_pretrained("{facts.folder}")  '
                        f'# base_model_name_or_path, then the adapter\n'
                        f'model.generation_config = GenerationConfig.from_pretrained("{facts.folder}")', no_cache)
    contents = "the adapter: " + ("its base model is in `base_model/`" if base_copy.endswith("/base_model")
                                  else "the base model's weights are not in this folder")
    return "\n".join([
        _front_matter(facts, "peft"),
        *_header(facts, contents),
        "## Base model",
        "",
        f"`adapter_config.json` records `base_model_name_or_path: {json.dumps(recorded)}`. {note} "
        f"To put the adapter on a copy of the base model that you load yourself:",
        "",
        "```python\nfrom peft import PeftModel\nfrom transformers import GPT2LMHeadModel\n\n"
        f"base = GPT2LMHeadModel.from_pretrained({json.dumps(base_copy)})\n"
        f'model = PeftModel.from_pretrained(base, "{facts.folder}")\n```',
        "",
        "## Use",
        "",
        f"The code reads this folder as `{facts.folder}` and the article from `article.txt`; it decodes exactly as "
        f"minisumm does (article cut at its end, separator kept, minisumm's {facts.decode.no_repeat_ngram}-gram "
        f"rule).",
        "",
        f"```python\n{code}\n```",
        "",
    ])


def _front_matter(facts: Facts, library: str) -> str:
    base = facts.config.model.model
    hub = _is_hub_id(facts.config) and not facts.config.model.random_init
    lines = ["---", f"library_name: {library}", "pipeline_tag: text-generation"]
    lines += [f"base_model: {base}"] if hub else []
    lines += ["tags:", "- summarization", "- gpt2", f"- {facts.config.method.method}", "- minisumm", "---", ""]
    return "\n".join(lines)


def _header(facts: Facts, contents: str) -> list[str]:
    c, d = facts.config, facts.decode
    share = facts.trainable / facts.total if facts.total else 0.0
    lines = [f"# {facts.run}: GPT-2 fine-tuned to summarise, {_method(c)}", ""]
    demo = _demo_note(c)
    if demo:
        lines += [f"> **A demonstration model.** {demo}", ""]
    lines += [
        f"Exported by minisumm from the run `{facts.run}`; {contents}.",
        "",
        "| | |",
        "|---|---|",
        f"| Method | {_method(c)} |",
        f"| Base model | {_base(c)} |",
        f"| Trainable parameters | {facts.trainable:,} of {facts.total:,} ({share:.2%}) |",
        f"| Training data | {_data(c)} |",
        f"| Input | article + separator, at most {facts.max_input_tokens} tokens |",
        f"| Output | the summary, at most {d.max_new_tokens} tokens, ended by the EOS token |",
        "",
        "## Results",
        "",
        *_results(facts.metrics),
        "## Prompt format",
        "",
        f"The model reads `article + separator` and continues with the summary. The separator is "
        f"`{json.dumps(c.data.separator)}` ({facts.separator_tokens} tokens). An article longer than "
        f"{facts.max_article_tokens} tokens is cut at its end before the separator is added, as in training: a "
        f"news story's lead holds its main facts, and the separator, the cue to summarise, must come last. "
        f"{facts.max_input_tokens} = max length {c.data.max_length}"
        + (f" - {'soft prompt' if c.method.method == 'prompt' else 'prefix'} {facts.prefix}" if facts.prefix else "")
        + f" - {d.max_new_tokens} new tokens.",
        "",
        "## Decoding",
        "",
        f"`generation_config.json` holds minisumm's settings: {_decoding(d)}. minisumm also never lets a "
        f"{d.no_repeat_ngram}-gram appear twice in the summary. transformers' `no_repeat_ngram_size` would also "
        f"forbid copying any {d.no_repeat_ngram} tokens of the article, so it is 0 in generation_config.json "
        f"and the code below adds minisumm's rule (`NoRepeatInSummary`).",
        "",
    ]
    return lines


def _decode_code(facts: Facts, imports: str, load: str, generate_extra: str = "") -> str:
    """Code that decodes one article as minisumm does; `generate_extra` ends the generate call (with its `)`)."""
    separator = json.dumps(facts.config.data.separator)
    return "\n".join([
        "import torch", imports, "", NO_REPEAT_IN_SUMMARY.format(n=facts.decode.no_repeat_ngram), "", load,
        f'tokenizer = AutoTokenizer.from_pretrained("{facts.folder}")',
        'article = open("article.txt").read()',
        f"article_ids = tokenizer.encode(article, add_special_tokens=False, truncation=True, "
        f"max_length={facts.max_article_tokens})  # cuts the end",
        f"prompt = article_ids + tokenizer.encode({separator}, add_special_tokens=False)",
        "input_ids = torch.tensor([prompt])",
        "output = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),",
        "                        logits_processor=[NoRepeatInSummary(len(prompt))]"
        + (f",\n                        {generate_extra}" if generate_extra else ")"),
        "print(tokenizer.decode(output[0, len(prompt):], skip_special_tokens=True))",
    ])


def _method(c: RunConfig) -> str:
    m = c.method
    if m.method == "lora":
        extras = "".join(f" + {e}" for e in m.lora_extras())
        return f"LoRA (rank {m.lora_rank}, alpha {m.lora_alpha:g}) on attention {', '.join(m.qkv())}{extras}"
    if m.method == "prompt":
        return f"prompt tuning ({m.prompt_length} soft-prompt vectors before the text)"
    if m.method == "prefix":
        return f"prefix tuning ({m.prefix_length} key/value vectors before the text in every layer)"
    if m.method == "last-layers":
        head = ", the LM head and the tied input embedding" if m.train_lm_head else ""
        return f"last-layers fine-tuning (the last {m.last_layers} blocks, the final layer norm{head})"
    return "full fine-tuning"


def _base(c: RunConfig) -> str:
    name = c.model.model
    random = " built with random weights (--random-init)" if c.model.random_init else ""
    if name == TINY_RANDOM:
        return "`tiny-random`: 2 layers, 64 wide, random weights built in code, a byte-level tokenizer"
    if name == TINY_NEWS:
        return f"`tiny-news`: a 1.4M-parameter GPT-2 pretrained by minisumm on invented news{random}"
    if _is_hub_id(c):
        return f"`{name}` (Hugging Face hub){random}"
    return f"the local folder `{name}`{random}"


def _demo_note(c: RunConfig) -> str:
    if c.model.model == TINY_RANDOM:
        return ("Its base model has random weights, so its summaries are noise: it exists to test that exports "
                "load and decode.")
    if c.model.random_init:
        return "Its base model was built with random weights (--random-init): for speed measurements only."
    if c.model.model == TINY_NEWS:
        return ("A 1.4M-parameter model pretrained on invented news: it shows fine-tuning at work in minutes, it "
                "does not summarise real news.")
    return ""


def _data(c: RunConfig) -> str:
    d = c.data
    source = {"cnn_dailymail": "CNN/DailyMail 3.0.0 (abisee/cnn_dailymail)",
              "sample": "minisumm's sample news dataset"}.get(d.data, f"`{d.data}`")
    files = [f for f in (d.train_file, d.validation_file, d.test_file) if f]
    if files:
        source = ", ".join(f"`{f}`" for f in files)
    drawn = "all of it" if str(d.train_size).lower() == "all" else f"at most {d.train_size} examples"
    return f"{source}: its train split, {drawn}"


def _results(metrics: dict | None) -> list[str]:
    if not metrics or not isinstance(metrics.get("rouge"), dict):
        return ["No scores of this checkpoint: evaluate it (`python evaluate.py RUN`) before exporting to have them "
                "here.", ""]
    rouge = metrics["rouge"]
    header = [name for key, name in ROUGE_NAMES.items() if key in rouge]
    cells = [_score(rouge[key]) for key in ROUGE_NAMES if key in rouge]
    if isinstance(metrics.get("loss"), (int, float)):
        header.append("loss")
        cells.append(f"{metrics['loss']:.3f}")
    decoding = metrics.get("decoding") or {}
    split = f", {metrics['split']} split" if metrics.get("split") else ""
    beams = decoding.get("beams", 1)
    how = "greedy" if beams == 1 else f"beam search ({beams} beams)"
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        "| " + " | ".join(cells) + " |",
        "",
        f"F-measures x 100 with bootstrap 95% intervals, and the mean token loss, on {metrics.get('examples', '?')} "
        f"examples of {metrics.get('data', '?')}{split} ({how}, at most {decoding.get('max_new_tokens', '?')} new "
        f"tokens), measured by minisumm's evaluate.py on `{metrics.get('source', '?')}`.",
        "",
    ]


def _score(entry: dict) -> str:
    mean, low, high = entry.get("mean"), entry.get("low"), entry.get("high")
    if low is None or high is None:
        return f"{mean:.2f}"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def _decoding(d: DecodeConfig) -> str:
    how = "greedy" if d.beams == 1 else f"beam search with {d.beams} beams, length penalty {d.length_penalty:g}"
    return f"{how}, no sampling, at most {d.max_new_tokens} new tokens, at least {d.min_new_tokens}"


def _is_hub_id(c: RunConfig) -> bool:
    name = c.model.model
    return name not in (TINY_RANDOM, TINY_NEWS) and not Path(name).expanduser().exists()
