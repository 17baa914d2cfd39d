"""README command 1 installs the product without the test extra: every library the product's
modules import when they load must come from `[project].dependencies` (directly or through
them). The test environment has the test extra too, so a missing runtime dependency would pass
every other test and only break `scripts/run.sh` on a fresh machine — as `httpx` once did."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("gridcore", "layers", "api", "spatial", "basemaps", "demo")


def _name(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _load_time_imports() -> dict[str, str]:
    """Top-level module → first file importing it at load time (not inside a function, where
    an optional library is imported on first use, e.g. dask in spatial.batch)."""
    found: dict[str, str] = {}
    for pkg in PRODUCT:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"))
            for node in tree.body:
                nodes = [node]
                if isinstance(node, ast.If | ast.Try):  # guarded imports still load
                    nodes = list(ast.walk(node))
                for n in nodes:
                    if isinstance(n, ast.Import):
                        names = [a.name for a in n.names]
                    elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
                        names = [n.module]
                    else:
                        continue
                    for name in names:
                        found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _runtime_closure() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _name(req.name)
        if name in seen:
            continue
        seen.add(name)
        extras = req.extras
        for text in metadata.requires(req.name) or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras) \
                    or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return seen


def test_every_load_time_import_is_a_runtime_dependency() -> None:
    first_party = set(PRODUCT) | {"tests", "benchmarks", "migrations"}
    providers = metadata.packages_distributions()
    runtime = _runtime_closure()
    missing = {}
    for module, where in _load_time_imports().items():
        if module in sys.stdlib_module_names or module in first_party or module == "__future__":
            continue
        dists = {_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {where}) is not installed at all"
        if not dists & runtime:
            missing[module] = (where, sorted(dists))
    assert not missing, ("imported when the product loads but only installed by the test "
                         f"extra (add to [project].dependencies): {missing}")
