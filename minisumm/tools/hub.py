"""Is the Hugging Face hub reachable? Asked once, so offline machines fail in a second, not a minute.

Without this, `from_pretrained` and `load_dataset` on a machine with no network retry with back-off for
about 50 seconds before giving up. One TCP connection attempt with a short timeout answers the same
question; when it fails, minisumm loads from the local cache only (`local_files_only=True`) and, if the
files are not there, says so in one sentence.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse


@functools.lru_cache(maxsize=1)
def reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
