"""Strict JSON (RFC 8259), the one reader and writer for every JSON file minisumm reads or writes.

    parse(text)      → the value, or JSONProblem: NaN / Infinity / 1e999, nesting deeper than MAX_DEPTH
    read(path)       → parse of the file's UTF-8 text (a byte-order mark is allowed), or JSONProblem
    dumps(data)      → text with NaN and ±inf written as null, which strict parsers accept

Python's `json` module reads and writes `NaN` and `Infinity`, which are not JSON: other tools (jq,
JavaScript, most JSON libraries) reject such a file. A value nested thousands of levels deep ends in a
RecursionError inside the parser, or later in anything that walks or prints the value; MAX_DEPTH is far
beyond what any minisumm file needs (a checkpoint's trainer_state.json nests 4 levels). JSONProblem is a
ValueError whose message is short and names the line where the parser knows it; callers put it into their
own sentence naming the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

MAX_DEPTH = 100


class JSONProblem(ValueError):
    """Why a text is not strict JSON minisumm can use, in a few words ("line 3: Expecting value")."""


def _refuse_constant(name: str):
    raise JSONProblem(f"it holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONProblem(f"it holds the number {text[:40]}, too large for a 64-bit float")
    return value


def parse(text: str | bytes):
    """The value of a strict JSON text (see the module docstring)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        raise JSONProblem(f"line {error.lineno}: {error.msg}") from None
    except RecursionError:
        raise JSONProblem(f"it nests deeper than {MAX_DEPTH} levels") from None
    check_depth(value)
    return value


def check_depth(value, limit: int = MAX_DEPTH) -> None:
    """Refuse a value (parsed JSON or YAML) whose lists and objects nest deeper than `limit`."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise JSONProblem(f"it nests deeper than {limit} levels")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def decode(data: bytes) -> str:
    """UTF-8 text (a byte-order mark is dropped), or JSONProblem naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise JSONProblem(f"it is not UTF-8 text (undecodable bytes on line {line})") from None


def read(path: str | Path):
    """The value of a strict JSON file; OSError when it cannot be read, JSONProblem when it is not strict JSON."""
    return parse(decode(Path(path).read_bytes()))


def _finite(data):
    """`data` with every NaN and ±inf float replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def dumps(data, indent: int | None = None) -> str:
    """Strict JSON text of `data`: NaN and ±inf (a diverged loss, a loss never measured) become null."""
    return json.dumps(_finite(data), indent=indent, allow_nan=False)
