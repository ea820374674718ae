"""`--config FILE`: any set of flags from a JSON or YAML file; flags on the command line override it.

Three shapes are read alike:

    {"method": "lora", "lr": 3e-4, "data": "sample"}                             flat: one key per flag
    {"method": {"method": "lora"}, "train": {"lr": 3e-4}, "data": {...}}        sections, as in RunConfig
    {"format_version": 1, "minisumm_version": "…", "config": {"model": …}}      a run's own config.json

so a run can be repeated with one change: `python train.py --config runs/lora-…/config.json --lr 1e-3` (a run
folder works too: its config.json is read). A key is a flag's name with underscores (`lora_rank` for
`--lora-rank`), as config.json writes it; a key that is no flag is refused, naming the one it probably
meant. Values are checked like flags (type, choices), so a mistake is one sentence naming the file and the
key (showing at most a short excerpt of a bad value); relative paths in the file count from the current
folder, as on the command line. `overwrite` is refused in a file: replacing a run folder must be asked for
on the command line. JSON is read strictly (`minisumm.tools.json_files`); YAML needs PyYAML (`pip install
pyyaml`) and may not use anchors and aliases (`&name`, `*name`), which can expand a short file into billions
of values.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from minisumm.config import RunConfig
from minisumm.errors import MinisummError, excerpt
from minisumm.tools import json_files
from minisumm.tools.flags import suggest

SECTIONS = {section.name: {f.name for f in dataclasses.fields(section.default_factory)}
            for section in dataclasses.fields(RunConfig)}
RUN_CONFIG_KEYS = {"format_version", "minisumm_version", "config"}  # what minisumm writes to <run>/config.json
NOT_IN_FILES = {"help", "config", "resume"}  # a settings file cannot name another one, nor resume a run
COMMAND_LINE_ONLY = {"overwrite": "replacing a run folder must be asked for on the command line (--overwrite)"}
KIND_WORDS = {int: "a whole number", float: "a number", str: "text"}


def read_settings(path: str | Path, parser: argparse.ArgumentParser) -> dict[str, object]:
    """The file's settings as `{dest: value}` for `parser.set_defaults`, each checked against its flag."""
    path = _settings_file(path)
    raw = _load(path)
    actions = {action.dest: action for action in parser._actions
               if action.option_strings and action.dest not in NOT_IN_FILES}
    settings = {}
    for key, value, section in _flatten(raw, path):
        if key in COMMAND_LINE_ONLY:
            raise MinisummError(f"--config {path} sets {key!r}, which a settings file may not: "
                                f"{COMMAND_LINE_ONLY[key]}; remove it from the file.")
        if key not in actions or (section and key not in SECTIONS[section]):
            raise MinisummError(_unknown(key, section, path, actions))
        settings[key] = _convert(value, actions[key], key, path)
    return settings


def chosen_settings(path: str | Path) -> set[str]:
    """The keys a settings file sets by choice (to warn about those the method does not read): all of them,
    except in a run's own config.json, which records every setting whatever the method."""
    path = _settings_file(path)
    raw = _load(path)
    return set() if isinstance(raw.get("config"), dict) else {key for key, _, _ in _flatten(raw, path)}


def _settings_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    return path / "config.json" if path.is_dir() and (path / "config.json").is_file() else path  # a run folder


def _load(path: Path) -> dict:
    if not path.is_file():
        what = "is a folder without a config.json" if path.is_dir() else "does not exist"
        raise MinisummError(f"--config {path} {what}; give a .json or .yaml settings file, or a run folder.")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise MinisummError(f"--config {path} has the extension {suffix or '(none)'!r}; settings files are .json, "
                            f".yaml or .yml.")
    try:
        text = json_files.decode(path.read_bytes())
    except json_files.JSONProblem:
        raise MinisummError(f"--config {path} is not UTF-8 text; re-save it with UTF-8 encoding.") from None
    if suffix == ".json":
        try:
            raw = json_files.parse(text)
        except json_files.JSONProblem as error:
            raise MinisummError(f"--config {path} is not valid JSON ({error}).") from None
    else:
        try:
            import yaml
        except ImportError:
            raise MinisummError(f"--config {path} is YAML, which needs PyYAML: pip install pyyaml, or write the "
                                f"settings as JSON.") from None
        try:
            raw = yaml.load(text, Loader=_loader(yaml))
            json_files.check_depth(raw)
        except (yaml.YAMLError, RecursionError, json_files.JSONProblem) as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            why = getattr(error, "problem", None) or error
            if isinstance(error, RecursionError):
                why = f"it nests deeper than {json_files.MAX_DEPTH} levels"
            raise MinisummError(f"--config {path} is not valid YAML ({where}{why}).") from None
    if raw is None:
        return {}  # an empty YAML file: no settings
    if not isinstance(raw, dict):
        raise MinisummError(f"--config {path} should hold an object of settings like "
                            f'{{"lr": 0.0003}}; it holds a {type(raw).__name__}.')
    return raw


def _loader(yaml):
    """PyYAML's safe loader, refusing anchors and aliases: settings never need them, and a few lines of
    nested aliases (a "billion laughs") expand into more values than memory holds."""
    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, f"the alias *{event.anchor} (settings files may "
                                                              f"not use YAML anchors and aliases)", event.start_mark)
            return super().compose_node(parent, index)
    return NoAliases


def _flatten(raw: dict, path: Path) -> list[tuple[str, object, str | None]]:
    """(key, value, section or None) for every setting of the three shapes."""
    if isinstance(raw.get("config"), dict):  # a run's config.json
        extra = sorted(set(raw) - RUN_CONFIG_KEYS, key=str)
        if extra:
            raise MinisummError(f"--config {path} looks like a run's config.json but also holds {excerpt(extra[0])}; "
                                f"put flags beside the sections, not beside 'config'.")
        _check_format(raw.get("format_version"), path)
        raw = raw["config"]
    settings = []
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, dict):
            settings += [(name, inner, key) for name, inner in value.items()]
        else:
            settings.append((key, value, None))
    return settings


def _check_format(version, path: Path) -> None:
    from minisumm.tools.checkpoint import FORMAT_VERSION

    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise MinisummError(f"--config {path} was written in format {excerpt(version)}, which this minisumm (format "
                            f"{FORMAT_VERSION}) cannot read; upgrade minisumm.")


def _unknown(key: str, section: str | None, path: Path, actions: dict) -> str:
    owner = next((name for name, keys in SECTIONS.items() if key in keys), None)
    if section and owner:
        return f"--config {path}: {key!r} is a {owner} setting, not a {section} one; move it to '{owner}'."
    where = f"{section}.{key}" if section else key
    text = f"--config {path} has the unknown setting {excerpt(where)}"
    guess = suggest("--" + str(key), [option for a in actions.values() for option in a.option_strings])
    if guess:
        flag, *value = guess.split()
        name = next(dest for dest, a in actions.items() if flag in a.option_strings)
        text += f"; did you mean {name!r}" + (f" set to {value[0]!r}" if value else "") + "?"
    return text + " (keys are the flags' names with underscores, as in a run's config.json)"


def _convert(value, action: argparse.Action, key: str, path: Path):
    """The value as the flag would have parsed it, or one sentence saying what it should be."""
    if value is None and action.default is None:
        return None
    is_switch = action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction)
    if is_switch:
        if isinstance(value, bool):
            return value
        expected = "true or false"
    else:
        kind = action.type or str
        expected = KIND_WORDS.get(kind, "text")
        converted = None if isinstance(value, (bool, dict, list)) or value is None else _as(kind, value)
        if converted is not None and action.choices and converted not in action.choices:
            expected = "one of " + ", ".join(map(str, action.choices))
        elif converted is not None:
            return converted
    raise MinisummError(f"--config {path}: {key} should be {expected}; got {excerpt(value)}.")


def _as(kind, value):
    """str(8) for a text flag ("train_size: 8"), float("3e-4") for a number (YAML reads 3e-4 as text)."""
    if kind is str:
        return str(value)
    if kind is int and isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None
