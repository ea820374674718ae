"""The command lines: train, evaluate, summarize."""
