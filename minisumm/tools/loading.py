"""Loading GPT-2 and its tokenizer as the commands do: `minisumm.model.load_gpt2`, the plain path, wrapped with
the models minisumm makes itself and one clear sentence for every way it can fail.

`load_model_and_tokenizer(name, random_init=False)` accepts
- a Hugging Face hub id (default `gpt2`, the 124M GPT-2 small of Radford et al. 2019);
- a local folder in `save_pretrained` layout;
- a folder with a config and tokenizer but no weights, only with `random_init=True` (never silently random);
- `tiny-random`: a 2-layer, 2-head, 64-wide GPT-2 (512 positions) with seeded random weights and a byte-level
  tokenizer built in code (256 byte tokens + `<|endoftext|>`), so tests need no files and no network;
- `tiny-news`: a 4-layer, 128-wide GPT-2 pretrained on invented news for an hour
  (`minisumm.tiny_news.pretrain`), shipped in the package: the offline model on which fine-tuning learns.
`load(model_config)` is the same for a `ModelConfig`, the form `minisumm.model.build` takes as its `load`.

Weights are read from safetensors only: a folder that holds only a pickle (`pytorch_model.bin`) is refused
with the one-line conversion. An offline machine asks the hub once (`minisumm.tools.hub`) and then loads
from the local cache or says in one sentence what to use instead. Every model leaves through
`minisumm.model.ready`: fp32, eval mode, pad = EOS.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

from minisumm.config import ModelConfig
from minisumm.errors import MinisummError, first_line
from minisumm.model import load_gpt2, ready
from minisumm.tiny_news import EOS, TINY_NEWS

TINY_RANDOM = "tiny-random"
TINY_SEED = 1234
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")  # never loaded: unpickling runs code


def byte_level_tokenizer() -> PreTrainedTokenizerBase:
    """A GPT-2-style byte-level tokenizer with no merges: one token per UTF-8 byte, plus EOS (id 256).

    It round-trips any text exactly and saves with `save_pretrained` like any Hugging Face tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # 256 printable stand-ins for the 256 bytes
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    vocab[EOS] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, bos_token=EOS, unk_token=EOS)
    tokenizer.model_max_length = 512
    return tokenizer


def tiny_random_config(vocab_size: int = 257) -> GPT2Config:
    """2 layers, 2 heads, 64 wide, 512 positions (its byte-level tokens make the sample's stories ~800 long;
    512 keeps their leads, where the highlighted facts are, and halves the demo's step time). Weights drawn
    10x wider than GPT-2's (std 0.2, not 0.02): at 0.02 a model this small has near-uniform logits that only
    training the tied embedding can sharpen, so prompt tuning, LoRA and last-layers could not show that they
    learn anything. No attention dropout: without it every attention call runs PyTorch's fused SDPA kernel,
    the fastest there is on CPU."""
    return GPT2Config(vocab_size=vocab_size, n_positions=512, n_embd=64, n_layer=2, n_head=2,
                      bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1, initializer_range=0.2,
                      attn_pdrop=0.0)


def _random_model(config: GPT2Config) -> GPT2LMHeadModel:
    """Build from a config with seeded weights: the same weights on every call, the caller's RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        return GPT2LMHeadModel(config)


def load(model_config: ModelConfig) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase]:
    """The base model and tokenizer `model_config` names (`minisumm.model.build`'s `load`)."""
    return load_model_and_tokenizer(model_config.model, random_init=model_config.random_init)


def load_model_and_tokenizer(name: str = "gpt2", random_init: bool = False
                             ) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerBase]:
    """Return a GPT-2 language model (eval mode, fp32) and its tokenizer, with pad = EOS."""
    if name == TINY_RANDOM:
        tokenizer = byte_level_tokenizer()
        model, tokenizer = ready(_random_model(tiny_random_config(len(tokenizer))), tokenizer)
    elif name == TINY_NEWS:
        from minisumm.tiny_news import shipped_model

        folder = shipped_model()
        try:
            model, tokenizer = load_local(folder, random_init)
        except MinisummError as error:  # a damaged install (a full disk, an edit)
            raise MinisummError(f"The {TINY_NEWS} model shipped in {folder} does not load ({error}); reinstall "
                                f"minisumm, or rebuild it with `minisumm pretrain --out DIR` and pass --model DIR."
                                ) from None
    elif Path(name).is_dir():
        model, tokenizer = load_local(Path(name), random_init)
    elif Path(name).exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise MinisummError(f"Model folder {name} does not exist (or is not a folder); give a hub id like "
                            f"'gpt2', a local save_pretrained folder, 'tiny-news' or 'tiny-random'.")
    else:
        model, tokenizer = load_hub(name, random_init)
    check_gpt2(model.config, name)
    if len(tokenizer) > model.config.vocab_size:
        raise MinisummError(f"The tokenizer of {name} has {len(tokenizer):,} tokens but the model's vocabulary "
                            f"has {model.config.vocab_size:,}: they do not belong together; use the tokenizer "
                            f"saved with the model.")
    return model, tokenizer


def load_local(folder: Path, random_init: bool):
    if not (folder / "config.json").is_file():
        raise MinisummError(f"Model folder {folder} has no config.json; it should be a save_pretrained folder "
                            f"(config.json, weights and tokenizer files).")
    if random_init:
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError, TypeError) as error:
            raise MinisummError(f"Could not load a tokenizer from {folder} ({first_line(error)}); the folder "
                                f"needs the tokenizer files that save_pretrained writes.") from None
        return ready(_random_model(GPT2Config.from_pretrained(folder)), tokenizer)
    has_weights = any((folder / f).is_file() for f in WEIGHT_FILES)
    pickled = [name for name in PICKLED_WEIGHTS if (folder / name).is_file()]
    if not has_weights and pickled:
        raise MinisummError(f"Model folder {folder} holds its weights only as {pickled[0]}, a pickle file that "
                            f"minisumm never loads (unpickling can run code); convert it once, in a Python you "
                            f"trust, to safetensors: python -c \"from transformers import GPT2LMHeadModel; "
                            f"GPT2LMHeadModel.from_pretrained('{folder}').save_pretrained('{folder}')\" (this "
                            f"writes model.safetensors beside it).")
    if not has_weights:
        raise MinisummError(f"Model folder {folder} has a config and tokenizer but no weights; pass "
                            f"--random-init to build it with random weights (for speed and memory "
                            f"measurements only), or point to a folder with model.safetensors.")
    try:
        return load_gpt2(str(folder))
    except (OSError, ValueError, TypeError, RuntimeError, SafetensorError) as error:  # truncated, not safetensors
        raise MinisummError(f"Could not load the weights in {folder} or its tokenizer ({first_line(error)}); the "
                            f"files may be corrupt or from another model.") from None


def load_hub(name: str, random_init: bool):
    from minisumm.tools import hub

    cache_only = {"local_files_only": not hub.reachable()}  # offline: the local cache or a clear error, fast
    try:
        if random_init:
            tokenizer = AutoTokenizer.from_pretrained(name, **cache_only)
            config = AutoConfig.from_pretrained(name, **cache_only)
            check_gpt2(config, name)
            return ready(_random_model(config), tokenizer)
        return load_gpt2(name, **cache_only)
    except MinisummError:
        raise
    except Exception as error:  # hub errors come as OSError, HTTP and connection errors of several libraries
        raise MinisummError(
            f"Model {name!r} could not be downloaded from the Hugging Face hub and is not in the local cache "
            f"({first_line(error)}); offline, run the miniature with --model tiny-news --data sample, or use "
            f"a local save_pretrained folder (--model PATH), or HF_HUB_OFFLINE=1 with a cache that already "
            f"holds {name!r}.") from None


def check_gpt2(config, name: str) -> None:
    if getattr(config, "model_type", None) != "gpt2":
        raise MinisummError(f"{name} is a {getattr(config, 'model_type', 'unknown')!r} model; minisumm "
                            f"fine-tunes GPT-2 models only (model_type 'gpt2').")
