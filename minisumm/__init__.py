"""minisumm: prompt tuning, LoRA and last-layer fine-tuning of GPT-2 for summarisation, by hand."""

__version__ = "0.1.0"

__all__ = ["__version__", "load_checkpoint"]


def __getattr__(name: str):
    """`minisumm.load_checkpoint`, imported on first use: `minisumm --help` need not load torch first."""
    if name == "load_checkpoint":
        from minisumm.tools.checkpoint import load_checkpoint
        return load_checkpoint
    raise AttributeError(f"module 'minisumm' has no attribute {name!r}")
