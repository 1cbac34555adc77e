"""The package's layers point down only (DEVELOPERS.md, "Layout"), and no private name is imported from another
module. Read from the source with `ast`, so a late (function-level) import counts like any other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "zoolens"

# Lowest first. A module may import its own layer and the layers below it, never one above. `evaluation` sits below
# `training` because train() measures the model it made on the test part it held out and saves that with it.
LAYERS = [
    {"zoolens.errors", "zoolens.choices", "zoolens.terminal", "zoolens.files", "zoolens.plotting", "zoolens.progress",
     "zoolens.spreadsheet"},
    {"zoolens.data"},
    {"zoolens.models"},
    {"zoolens.runtime"},
    {"zoolens.inference"},
    {"zoolens.evaluation"},
    {"zoolens.training"},
    {"zoolens.studies"},
    {"zoolens.apps"},
    {"zoolens.cli"},
]
FACADE = "zoolens"  # zoolens/__init__.py: the public names, imported lazily by name (importlib), above everything


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    for index, members in enumerate(LAYERS):
        if any(module == member or module.startswith(member + ".") for member in members):
            return index
    raise AssertionError(f"{module}: in no layer of tests/test_layers.py; add its package there")


def is_module(name: str) -> bool:
    path = SOURCE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names taken from it) for every zoolens import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("zoolens"):
            names = [alias.name for alias in node.names]
            submodules = [name for name in names if is_module(f"{node.module}.{name}")]  # `from zoolens import files`
            found += [(node.lineno, f"{node.module}.{name}", []) for name in submodules]
            if set(names) - set(submodules):
                found.append((node.lineno, node.module, [name for name in names if name not in submodules]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names if alias.name.startswith("zoolens")]
    return found


MODULES = sorted(SOURCE.rglob("*.py"))


def test_every_module_is_in_a_layer():
    for path in MODULES:
        if module_name(path) != FACADE:
            layer_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down_and_take_no_private_names(path):
    here = module_name(path)
    if here == FACADE:
        return
    wrong = []
    for line, target, names in imports(path):
        if target == FACADE:
            if set(names) - {"__version__"}:
                wrong.append(f"line {line}: takes {names} from the facade; import them from their modules")
            continue
        if layer_of(target) > layer_of(here):
            wrong.append(f"line {line}: imports {target}, a layer above {here}")
        private = [name for name in names if name.startswith("_")]
        if private and target != here:
            wrong.append(f"line {line}: takes private {private} from {target}")
    assert not wrong, f"{path.relative_to(SOURCE.parent)}:\n  " + "\n  ".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    """The test above must be able to fail: a late import of a higher layer is found."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from zoolens.training.trainer import train\n    from zoolens.files import _holder\n")
    found = imports(sample)
    assert [(target, names) for _, target, names in found] == [("zoolens.training.trainer", ["train"]),
                                                              ("zoolens.files", ["_holder"])]
    assert layer_of("zoolens.training.trainer") > layer_of("zoolens.data.images")
