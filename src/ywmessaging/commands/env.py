"""`ywm env`: print the environment-variable table (the README embeds it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import ENV_VARS, REPO_ROOT, Settings
from ..errors import ConfigError


def markdown_table() -> str:
    """Every environment variable, its default and meaning, as a Markdown table."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for var in ENV_VARS:
        default = var.default
        if isinstance(default, Path):
            shown = f"`{default.relative_to(REPO_ROOT)}` in the checkout" if default.is_relative_to(
                REPO_ROOT) else f"`{default}`"
        elif default is None:
            shown = "(unset)"
        else:
            shown = f"`{default}`"
        lines.append(f"| `{var.name}` | {shown} | {var.meaning} |")
    return "\n".join(lines)


START, END = "<!-- env-table:start -->", "<!-- env-table:end -->"


def update_readme(readme: Path) -> bool:
    """Replace the table between the README's markers; True if it changed."""
    text = readme.read_text(encoding="utf-8")
    head, sep, rest = text.partition(START)
    _old, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ConfigError(f"{readme} has no {START} ... {END} markers")
    new = f"{head}{START}\n{markdown_table()}\n{END}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the table, or write it into the README."""
    if args.update_readme:
        changed = update_readme(REPO_ROOT / "README.md")
        print("README.md updated" if changed else "README.md already current")
        return 0
    print(markdown_table())
    return 0


def register(sub: Any) -> None:
    """Add `ywm env`."""
    p = sub.add_parser("env", help="print the table of environment variables")
    p.add_argument("--update-readme", action="store_true",
                   help="rewrite the table in README.md between its markers")
    p.set_defaults(func=run)
