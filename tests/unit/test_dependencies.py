"""What the services import at run time is what the image installs: every third-party module
imported by shared/, services/ and policytrack/ comes from a distribution in the project's
own dependencies, not only in the ``dev`` extra (the Dockerfile installs ``.`` alone)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"shared", "services", "policytrack"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        _normalized(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]) for requirement in project["dependencies"]
    }


def _imported_at_run_time() -> dict[str, set[str]]:
    """Top-level module -> the files importing it (imports only for type checking excluded)."""
    found: dict[str, set[str]] = {}
    for folder in OURS:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            checking = {
                id(node)
                for block in ast.walk(tree)
                if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                for node in ast.walk(block)
            }
            for node in ast.walk(tree):
                if id(node) in checking:
                    continue
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_declared_dependency() -> None:
    distributions = packages_distributions()
    declared = _declared()
    missing = {}
    for module, files in _imported_at_run_time().items():
        if module in OURS or module in sys.stdlib_module_names or module == "__future__":
            continue
        providers = {_normalized(d) for d in distributions.get(module, [])}
        if not providers & declared:
            missing[module] = sorted(files)
    assert not missing, f"imported at run time but not in [project].dependencies: {missing}"
