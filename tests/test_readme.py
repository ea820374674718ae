"""The README's words about the code stay true: its reading path (line counts, how many files, how many lines),
what the lesson leans on, and every backticked `minisumm.…` name and `minisumm/…` path, there and in the
docstrings of the reading path."""

import ast
import importlib
import re

import pytest

from layering import README, ROOT, imports, module_files, module_name, readme_section, reading_path

NUMBER_WORDS = {word: n for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
DOTTED = re.compile(r"\bminisumm(?:\.[A-Za-z_]\w*)+")
PATH = re.compile(r"\bminisumm/[\w./-]*\w/?")


def line_count(path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_reading_path_table_counts_each_file_s_lines():
    rows = reading_path()
    assert [(entry, stated) for entry, stated, _ in rows] == \
        [(entry, sum(line_count(path) for path in files)) for entry, _, files in rows]


def test_the_reading_path_s_file_and_line_totals_are_the_table_s():
    rows = reading_path()
    files = [path for _, _, paths in rows for path in paths]
    intro = readme_section("Reading the code").split("```")[0]
    counted = re.search(r"\*\*The lesson\*\* is (\w+) files read in this order, ([\d,]+) lines", intro)
    assert counted, "the section should say: **The lesson** is N files read in this order, M lines"
    assert NUMBER_WORDS[counted.group(1)] == len(files)
    assert int(counted.group(2).replace(",", "")) == sum(line_count(path) for path in files)


def test_what_the_lesson_leans_on_is_what_it_imports():
    """The sentence naming what the lesson leans on lists exactly the package's files and folders that the
    reading path imports from outside itself."""
    modules = module_files()
    lesson = {module_name(path) for _, _, files in reading_path() for path in files}
    used = {target for name in lesson for target, _, _ in imports(name, modules[name], modules)} - lesson
    top = {name.split(".")[1] for name in used if name != "minisumm"}
    expected = {f"{name}/" if modules[f"minisumm.{name}"].name == "__init__.py" else f"{name}.py" for name in top}
    sentence = re.search(r"The lesson leans on (.*?), and on nothing else of minisumm",
                         readme_section("Reading the code").replace("\n", " "))
    assert sentence, "the section should say: The lesson leans on `x.py`, ..., and on nothing else of minisumm"
    named = set(re.findall(r"`([\w/]+(?:\.py|/))`", sentence.group(1)))
    assert named == expected


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def reading_path_docstrings():
    for _, _, files in reading_path():
        for path in files:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in [tree, *ast.walk(tree)]:
                if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        yield f"{path.relative_to(ROOT)}:{getattr(node, 'name', 'module')}", doc


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def unresolved(where: str, text: str) -> list[str]:
    spans = backticked(text)
    missing = [f"{where}: `{name}`" for span in spans for name in DOTTED.findall(span) if not resolves(name)]
    return missing + [f"{where}: `{path}`" for span in spans for path in PATH.findall(span)
                      if not (ROOT / path).exists()]


def test_every_backticked_minisumm_name_and_path_in_the_readme_resolves():
    assert unresolved("README.md", README.read_text(encoding="utf-8")) == []


def test_every_backticked_minisumm_name_and_path_in_the_reading_path_s_docstrings_resolves():
    docstrings = list(reading_path_docstrings())
    assert len(docstrings) > 50  # the module, class and function docstrings were found
    assert [missing for where, doc in docstrings for missing in unresolved(where, doc)] == []


@pytest.mark.parametrize("name, exists", [("minisumm.model.body", True), ("minisumm.load_checkpoint", True),
                                          ("minisumm.tools", True), ("minisumm.forward.body", False),
                                          ("minisumm.model.no_such_function", False)])
def test_names_are_resolved_by_importing_them(name, exists):
    assert resolves(name) == exists
