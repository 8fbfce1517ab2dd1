"""The layout docs/architecture.md describes, kept true (issue 8)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "orgenv"


def test_orgenv_has_at_most_16_top_level_modules_and_no_prefixed_names():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert len(modules) <= 16, modules
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    every_name = modules + [p.stem for pkg in packages for p in (PACKAGE / pkg).glob("*.py")]
    # A name carrying a package's prefix (audit_views, history_admin) means a package is
    # asking to exist.
    prefixed = [n for n in every_name for pkg in packages if n.startswith(f"{pkg}_")]
    assert prefixed == []


def test_no_type_ignore_is_left():
    sources = [
        *PACKAGE.rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "config").rglob("*.py"),
    ]
    marker = "type: " + "ignore"  # spelt in two pieces so this file does not match itself
    offenders = [str(p.relative_to(ROOT)) for p in sources if marker in p.read_text()]
    assert offenders == []


def test_the_architecture_table_names_every_module_and_package():
    section = (ROOT / "docs" / "architecture.md").read_text()
    modules = [p.name for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
    packages = [f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    missing = [name for name in modules + packages if name not in section]
    assert missing == [], "give each a row in docs/architecture.md"
