"""minisumm: prompt tuning, LoRA and last-layer fine-tuning of GPT-2 for summarisation, by hand."""

__version__ = "0.1.0"

from minisumm.model import load_checkpoint  # noqa: E402  (needs __version__ above)

__all__ = ["__version__", "load_checkpoint"]
