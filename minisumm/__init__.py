"""minisumm: prompt tuning, LoRA and last-layer fine-tuning of GPT-2 for summarisation, by hand."""

__version__ = "0.1.0"
