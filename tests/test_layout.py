"""The package rules of the tree, read from the imports (no module is executed).

- ``shared/`` is what every process needs: it imports no ``services.*`` module.
- ``pyparrot/`` (the command line) imports no ``services.gateway`` module.
- A service imports ``shared/`` and its own folder, never another service.
- A module in ``services/gateway/routes/`` (or ``live/routes/``) imports no other route
  module: what two routes share lives beside them, not in one of them.

``KNOWN`` lists the imports that still break a rule; it may only shrink.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())

# (importing module, imported module) pairs that break a rule today; each step removes some.
KNOWN: set[tuple[str, str]] = set()


# A gateway's reply stream is part of the wire even though only gateways read it: a worker
# publishes to the name a job carries in ``reply_to``.
WIRE = {"replies"}
# Names in shared/ that only the gateway uses today; it may only shrink.
KNOWN_SHARED_NAMES: dict[str, set[str]] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package: str | None = None) -> Iterator[str]:
    """Every module ``path`` imports, absolute, including imports inside functions."""
    if package is None:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # ``from services.gateway import keystore`` imports a module too
            yield from (f"{base}.{alias.name}" for alias in node.names)


def existing(name: str) -> bool:
    """Whether ``name`` is a module or package of the tree (not a class or function)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def edges(*folders: str) -> Iterator[tuple[str, str]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for target in imports(path):
                if existing(target):
                    yield module_name(path), target


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(rule: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    if rule == "shared":
        found = {(a, b) for a, b in edges("shared") if under(b, "services")}
    elif rule == "cli":
        found = {(a, b) for a, b in edges("pyparrot") if under(b, "services.gateway")}
    elif rule == "services":
        for a, b in edges("services"):
            own = a.split(".")[1] if a.count(".") else None
            if under(b, "services") and b != "services" and b.split(".")[1] != own:
                found.add((a, b))
    elif rule == "routes":
        for routes in ("services.gateway.routes", "services.gateway.live.routes"):
            found |= {
                (a, b)
                for a, b in edges(routes.replace(".", "/"))
                if a != routes and under(b, routes) and b != routes and a != b
            }
    return found


RULES = ["shared", "cli", "services", "routes"]


@pytest.mark.parametrize("rule", RULES)
def test_import_rule_holds(rule: str) -> None:
    assert violations(rule) - KNOWN == set()


def test_known_exceptions_still_exist() -> None:
    """An exception that no longer occurs leaves KNOWN, so the list only shrinks."""
    current = set().union(*(violations(rule) for rule in RULES))
    assert KNOWN - current == set()


def test_the_checker_sees_nested_and_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from services.gateway import keystore\nfrom .. import bus\n")
    found = set(imports(source, package="shared.admin"))
    assert {"services.gateway.keystore", "shared.bus"} <= found


def test_every_shared_name_has_a_user_outside_the_gateway() -> None:
    """What ``shared/streams.py`` and ``shared/metrics.py`` define, some process other than
    the gateway uses (a worker, the external adapter, the command line); a name only the
    gateway uses lives in the gateway."""
    others = [
        path.read_text()
        for folder in ("shared", "services", "pyparrot")
        for path in (ROOT / folder).rglob("*.py")
        if not path.is_relative_to(ROOT / "services" / "gateway")
    ]
    for module in ("streams", "metrics"):
        tree = ast.parse((ROOT / "shared" / f"{module}.py").read_text())
        defined = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
        ]
        used = re.compile(rf"\b{module}\.(\w+)|from shared\.{module} import \(?([\w\s,]+)\)?", re.M)
        names = {
            word
            for text in others
            for match in used.finditer(text)
            for word in re.findall(r"\w+", match.group(1) or match.group(2))
        }
        only_gateway = {name for name in defined if name not in names} - WIRE
        assert only_gateway == KNOWN_SHARED_NAMES.get(module, set()), f"shared/{module}.py"
