"""tiny-news: invented news stories and a tiny GPT-2 pretrained on them, for offline runs that learn."""

from pathlib import Path

from minisumm.errors import MinisummError

TINY_NEWS = "tiny-news"  # the --model name of the pretrained model (`minisumm.tiny_news.pretrain`)
EOS = "<|endoftext|>"  # GPT-2's end-of-text token, shared by every tokenizer minisumm makes
MODEL_DIR = Path(__file__).parent / "model"  # the shipped tiny-news (a save_pretrained folder + pretrain.json)


def shipped_model() -> Path:
    """The tiny-news folder shipped in the package; one sentence saying how to rebuild it when it is missing."""
    if not (MODEL_DIR / "model.safetensors").is_file():
        raise MinisummError(f"The shipped tiny-news model is missing from {MODEL_DIR} (a damaged install?); "
                            f"reinstall minisumm, or rebuild it with `minisumm pretrain --out DIR` (about an hour "
                            f"on 2 CPU cores) and pass --model DIR.")
    return MODEL_DIR
