"""The house's boundaries, checked on the source (design.md: "The hub imports nothing from edge/ but the
contract"). The hub may use the contract (edge.protocol; the node config models it validates pushes
with: edge.config, its vision section and edge.errors) and the helpers both sides share (edge.shared);
an import of anything else of the node agent fails here, naming the file and the line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HUB_MAY_IMPORT = ("edge", "edge.protocol", "edge.config", "edge.errors", "edge.vision.config", "edge.shared")


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def _allowed(module: str) -> bool:
    return any(module == a or (a != "edge" and module.startswith(a + ".")) for a in HUB_MAY_IMPORT)


def test_the_hub_imports_only_the_contract_and_the_shared_helpers_of_edge() -> None:
    wrong = [f"{p.relative_to(ROOT)}:{line} imports {mod}"
             for p in sorted((ROOT / "hub").rglob("*.py"))
             for line, mod in _imports(p)
             if (mod == "edge" or mod.startswith("edge.")) and not _allowed(mod)]
    assert not wrong, "the hub may import only the contract and edge.shared:\n" + "\n".join(wrong)


def test_the_shared_helpers_and_the_contract_import_nothing_of_the_agent() -> None:
    """What the hub may import must not pull the node agent in behind it."""
    files = [ROOT / "edge" / "protocol.py", ROOT / "edge" / "config.py", ROOT / "edge" / "errors.py",
             ROOT / "edge" / "vision" / "config.py", *sorted((ROOT / "edge" / "shared").rglob("*.py"))]
    wrong = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in files for line, mod in _imports(p)
             if mod.startswith("edge.") and not _allowed(mod)]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """The check itself: a stray import of the node agent is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("from edge.link.outbox import Outbox\nfrom edge.protocol import Topics\n")
    assert [m for _, m in _imports(bad) if not _allowed(m)] == ["edge.link.outbox"]
