"""The package's imports, read from the source with `ast` (nothing is imported), and the README's reading path.

Shared by test_layering.py and test_readme.py. Every import statement counts, also one inside a function: a
lazy import is still a dependency, only a later one.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minisumm"
README = ROOT / "README.md"


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its `__init__.py`)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _absolute(name: str, node: ast.ImportFrom, path: Path) -> str:
    """The absolute module name of a (possibly relative) `from ... import`."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """`(module, imported name or None, line)` for every import of a package module in `name`'s source; the
    module is the package module the statement loads (`from minisumm import methods` loads minisumm.methods)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "minisumm":
                    found.append((_longest_module(alias.name, modules), None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(name, node, path)
            if source.split(".")[0] != "minisumm":
                continue
            for alias in node.names:
                child = f"{source}.{alias.name}"
                found.append((child, None, node.lineno) if child in modules else (source, alias.name, node.lineno))
    return found


def _longest_module(dotted: str, modules: dict[str, Path]) -> str:
    parts = dotted.split(".")
    while ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports. An import of one of its own parent packages is left out:
    Python runs a package's `__init__` before any module in it, so that edge is there for every module."""
    modules = module_files()
    graph = {}
    for name, path in modules.items():
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = {target for target, _, _ in imports(name, path, modules)
                       if target != name and target not in parents}
    return graph


def reading_path() -> list[tuple[str, int, list[Path]]]:
    """The README's "Reading the code" table of the lesson: `(entry, lines stated, files)` in reading order."""
    section = readme_section("Reading the code")
    table = re.search(r"```\n(minisumm/.*?)```", section, re.S)
    assert table, "the README's 'Reading the code' section has no table of minisumm/ files"
    rows = []
    for line in table.group(1).splitlines():
        entry, stated = re.match(r"(minisumm/\S*)\s+([\d,]+)\s", line).groups()
        target = ROOT / entry
        files = sorted(target.glob("*.py")) if target.is_dir() else [target]
        rows.append((entry, int(stated.replace(",", "")), files))
    return rows


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
