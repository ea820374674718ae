"""The layers the README promises, read from the source with `ast`: the lesson (the README's reading path)
imports no tool, command or tiny-news module; the package has no import cycle; no module imports another
module's private (`_name`) names."""

import ast

from layering import import_graph, imports, module_files, module_name, reading_path

TOOL_SIDE = ("minisumm.tools", "minisumm.cli", "minisumm.tiny_news")


def lesson_modules() -> list[str]:
    names = [module_name(path) for _, _, files in reading_path() for path in files]
    assert "minisumm.training" in names and "minisumm.model" in names  # the table was read
    return names


def test_no_file_of_the_reading_path_imports_the_tools_the_commands_or_tiny_news():
    modules = module_files()
    found = [f"{name} line {line} imports {target}" for name in lesson_modules()
             for target, _, line in imports(name, modules[name], modules)
             if target.startswith(TOOL_SIDE)]
    assert found == []


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    cycles, state = [], {}  # state: 1 while on the current path, 2 when finished

    def visit(name, path):
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_module_imports_another_module_s_private_names():
    modules = module_files()
    found = []
    for name, path in modules.items():
        found += [f"{name} line {line} imports {target}.{imported}"
                  for target, imported, line in imports(name, path, modules)
                  if imported and _private(imported)]
        # and `module._name` on a package module it imported whole (`from minisumm.tools import checkpoint`)
        whole = {alias.asname or alias.name.split(".")[-1]
                 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in node.names
                 if f"{getattr(node, 'module', None) or ''}.{alias.name}".strip(".") in modules
                 or alias.name in modules}
        found += [f"{name} line {node.lineno} uses {node.value.id}.{node.attr}"
                  for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in whole and _private(node.attr)]
    assert found == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")
