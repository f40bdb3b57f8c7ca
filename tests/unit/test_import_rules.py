"""The layering of src/vam, checked over the AST of every module (imports inside functions count).

- Airflow is imported only by vam.orchestration; vam.orchestration only by itself, the high-level
  calls (vam/__init__.py) and the CLI.
- No import cycles between vam's modules.
- media, enrich, storage, ingest and lifecycle never import the catalog; the step layer (vam.steps) and the
  runtime are imported by nobody below them.
- Development servers (vam.devstack) are imported by nothing else under src/vam.
- Settings are read once at the edge: load_settings() is called only by the settings module itself,
  the runtime, the CLI, the orchestration package and the devstack.
- No module outside vam.catalog calls the catalog's private helpers (``_tx``, ``_event``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vam.settings import REPO_ROOT

SRC = REPO_ROOT / "src"
PLUGINS = REPO_ROOT / "plugins"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path, package: str) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


MODULES = _modules(SRC, "vam")


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``module`` imports, anywhere in the file (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from vam import storage` imports the module vam.storage
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return found


IMPORTS = {name: _imports(path, name) for name, path in MODULES.items()}


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _importers(target: str) -> set[str]:
    return {m for m, imported in IMPORTS.items() if any(_under(i, target) for i in imported)}


def test_the_tree_is_what_the_rules_talk_about():
    for package in ("vam.orchestration", "vam.steps", "vam.runtime", "vam.devstack", "vam.catalog"):
        assert package in MODULES, f"{package} is missing"
    assert len(MODULES) > 40


def test_only_orchestration_imports_airflow():
    offenders = sorted(m for m in _importers("airflow") if not _under(m, "vam.orchestration"))
    assert offenders == [], f"modules importing airflow outside vam.orchestration: {offenders}"


def test_orchestration_is_used_only_by_the_edges():
    allowed = {"vam", "vam.cli"}
    offenders = sorted(
        m for m in _importers("vam.orchestration") if not _under(m, "vam.orchestration") and m not in allowed
    )
    assert offenders == []


@pytest.mark.parametrize("layer", ["vam.media", "vam.enrich", "vam.storage", "vam.ingest", "vam.lifecycle"])
def test_lower_layers_never_import_the_catalog(layer):
    offenders = sorted(m for m in _importers("vam.catalog") if _under(m, layer))
    assert offenders == [], f"{layer} imports the catalog: {offenders}"


@pytest.mark.parametrize("upper", ["vam.steps", "vam.runtime"])
def test_nothing_below_imports_the_step_layer(upper):
    lower = (
        "vam.media",
        "vam.enrich",
        "vam.storage",
        "vam.ingest",
        "vam.lifecycle",
        "vam.catalog",
        "vam.settings",
        "vam.errors",
    )
    offenders = sorted(m for m in _importers(upper) if any(_under(m, lo) for lo in lower))
    assert offenders == [], f"{offenders} import {upper}"


def test_production_code_never_imports_the_devstack():
    offenders = sorted(m for m in _importers("vam.devstack") if not _under(m, "vam.devstack"))
    assert offenders == []


def test_no_import_cycles():
    graph = {m: {i for i in imported if i in MODULES and i != m} for m, imported in IMPORTS.items()}
    # a package's __init__ re-exporting its own submodules is not a cycle through the package
    for m in graph:
        graph[m] = {i for i in graph[m] if not (_under(m, i) and MODULES[i].name == "__init__.py")}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _calls(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text())
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == name:
                lines.append(node.lineno)
    return lines


def test_settings_are_read_only_at_the_edge():
    edges = ("vam.settings", "vam.runtime", "vam.cli", "vam.orchestration", "vam.devstack")
    offenders = {
        m: _calls(p, "load_settings")
        for m, p in MODULES.items()
        if not any(_under(m, e) for e in edges) and _calls(p, "load_settings")
    }
    assert offenders == {}, f"load_settings() called below the edge: {offenders}"


def test_catalog_private_helpers_stay_inside_the_catalog():
    offenders = {}
    for m, p in MODULES.items():
        if _under(m, "vam.catalog"):
            continue
        tree = ast.parse(p.read_text())
        used = sorted(
            {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("_tx", "_event")}
        )
        if used:
            offenders[m] = used
    assert offenders == {}


def test_operators_import_vam_only_through_its_public_layers():
    """The operator library is a thin shell: it reaches vam through the steps, the orchestration
    package and plain data (settings, errors), never media or the catalog directly."""
    allowed = ("vam.steps", "vam.orchestration", "vam.settings", "vam.errors", "vam.runtime")
    for path in sorted((PLUGINS / "operators").glob("*.py")):
        module = _module_name(path, PLUGINS)
        imported = {i for i in _imports(path, module) if _under(i, "vam")}
        wrong = sorted(i for i in imported if not any(_under(i, a) for a in allowed))
        assert wrong == [], f"{path.name} imports {wrong}"
