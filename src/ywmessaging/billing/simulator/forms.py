"""Stripe's request encoding: `a[b][0][c]=v` form fields (bodies and query strings) into nested
dicts and lists, as the Stripe API reads them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_PART = re.compile(r"\[([^\[\]]*)\]")


def _path(key: str) -> list[str]:
    head = key.split("[", 1)[0]
    return [head, *_PART.findall(key[len(head):])]


def _listify(node: Any) -> Any:
    """Dicts whose keys are all indexes (or appends) become lists, in index order."""
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() or k.startswith("\0") for k in items):
        return [items[k] for k in sorted(items, key=_order)]
    return items


def _order(key: str) -> int:
    return int(key[1:]) if key.startswith("\0") else int(key)


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nested parameters from decoded form pairs (`x[]` appends; `x[0]` indexes)."""
    root: dict[str, Any] = {}
    appended = 0
    for key, value in pairs:
        parts = _path(key)
        node = root
        for i, part in enumerate(parts):
            if part == "":
                appended += 1
                part = f"\0{appended}"
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    out = _listify(root)
    return out if isinstance(out, dict) else {}


def as_list(value: Any) -> list[Any]:
    """A parameter that may be one value or a list, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_bool(value: Any) -> bool | None:
    """`true`/`false` as Stripe reads them (None: absent)."""
    if value is None:
        return None
    return str(value).lower() == "true"
