"""The Stripe simulator reads form fields as Stripe does: `a[b][0][c]`, `x[]`, `x[0]`."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from ywmessaging.billing.simulator.forms import as_bool, as_list, parse_form


def test_nested_fields_lists_and_appends() -> None:
    pairs = parse_qsl(urlencode([
        ("mode", "subscription"), ("line_items[0][price]", "price_1"),
        ("line_items[0][quantity]", "2"), ("line_items[1][price]", "price_2"),
        ("metadata[church_id]", "c1"), ("expand[]", "customer"),
        ("expand[]", "subscription"), ("lookup_keys[1]", "b"), ("lookup_keys[0]", "a"),
        ("subscription_data[metadata][k]", "v")]))
    assert parse_form(pairs) == {
        "mode": "subscription",
        "line_items": [{"price": "price_1", "quantity": "2"}, {"price": "price_2"}],
        "metadata": {"church_id": "c1"}, "expand": ["customer", "subscription"],
        "lookup_keys": ["a", "b"], "subscription_data": {"metadata": {"k": "v"}}}


def test_single_values_and_booleans() -> None:
    assert as_list(None) == [] and as_list("a") == ["a"] and as_list(["a"]) == ["a"]
    assert as_bool(None) is None and as_bool("true") is True and as_bool("false") is False
    assert parse_form([("items[10]", "x"), ("items[2]", "y")])["items"] == ["y", "x"]   # by index
