"""Requests are checked against openapi.yaml: one 422 lists every bad field, nulls and empty
strings the spec refuses are refused, a wrong method is 405 with `Allow` (issue #16, 7 and 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Church, Client, problem, register


def pairs(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field, code) of every listed error."""
    return [(e["field"], e["code"]) for e in body["errors"]]


async def test_one_422_lists_every_bad_field(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.post("/api/v1/members", headers=church.auth, json={
        "first_name": "", "last_name": None, "phone": "x" * 33, "email": "not-an-address",
        "group_ids": ["a", "0b4f0e8c-4a8e-4d5e-9f43-1c2b3a4d5e6f"], "nickname": "Al"})
    body = await problem(resp, 422, "validation_failed")
    assert sorted(pairs(body)) == sorted([
        ("first_name", "too_short"), ("last_name", "null"), ("phone", "too_long"),
        ("email", "invalid_format"), ("group_ids.0", "invalid_format"),
        ("nickname", "unknown_field")])
    assert body["field"] == body["errors"][0]["field"]   # kept for older clients
    assert all(e["detail"] for e in body["errors"])


async def test_missing_fields_are_all_named(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.post("/api/v1/members", headers=church.auth, json={})
    body = await problem(resp, 422, "validation_failed")
    assert sorted(pairs(body)) == [("first_name", "required"), ("last_name", "required"),
                                   ("phone", "required")]


async def test_details_count_in_the_singular_and_plural(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.post("/api/v1/groups", headers=church.auth,
                                 json={"name": "", "description": "d" * 1001})
    body = await problem(resp, 422, "validation_failed")
    details = {e["field"]: e["detail"] for e in body["errors"]}
    assert details == {"name": "name must be at least 1 character",
                       "description": "description must be at most 1000 characters"}


async def test_bad_query_parameters_are_all_named(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.get("/api/v1/members?limit=0&sort=age&order=asc&order=desc&x=1",
                                headers=church.auth)
    body = await problem(resp, 422, "validation_failed")
    assert sorted(pairs(body)) == [("limit", "too_small"), ("order", "repeated"),
                                   ("sort", "not_allowed"), ("x", "unknown_field")]


async def test_null_where_the_spec_allows_none_is_refused(api_client: Client) -> None:
    church = await register(api_client)
    for method, path, body, field in (
        ("POST", "/api/v1/templates", {"name": "T", "body": "Hi", "category": None},
         "category"),
        ("POST", "/api/v1/nps", {"score": 9, "comment": None}, "comment"),
        ("POST", "/api/v1/groups", {"name": "G", "description": None}, "description"),
        ("PATCH", f"/api/v1/admins/{church.admin_id}", {"first_name": "A", "last_name": None},
         "last_name"),
    ):
        resp = await api_client.request(method, path, headers=church.auth, json=body)
        assert pairs(await problem(resp, 422, "validation_failed")) == [(field, "null")], path


async def test_empty_and_blank_strings_are_refused_as_the_spec_says(api_client: Client) -> None:
    church = await register(api_client)
    for path, body, field in (
        ("/api/v1/members", {"first_name": "A", "last_name": "B", "phone": ""}, "phone"),
        ("/api/v1/branches", {"name": "North", "address": ""}, "address"),
        ("/api/v1/groups", {"name": "   "}, "name"),
        ("/api/v1/templates", {"name": "T", "body": "a\u0007b"}, "body"),
    ):
        resp = await api_client.post(path, headers=church.auth, json=body)
        errors = (await problem(resp, 422, "validation_failed"))["errors"]
        assert [e["field"] for e in errors] == [field], (path, errors)


async def test_an_empty_area_code_is_refused(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.get("/api/v1/numbers/available?area_code=", headers=church.auth)
    assert pairs(await problem(resp, 422, "validation_failed")) == [
        ("area_code", "invalid_format")]


async def test_any_bad_cursor_is_invalid_cursor(api_client: Client) -> None:
    church = await register(api_client)
    for cursor in ("0", "eyJrIjoi", "!!"):
        resp = await api_client.get(f"/api/v1/members?cursor={cursor}", headers=church.auth)
        await problem(resp, 400, "invalid_cursor")


async def test_a_past_send_at_is_refused_with_its_own_code(api_client: Client) -> None:
    church = await register(api_client)
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    resp = await api_client.post("/api/v1/broadcasts/preview", headers=church.auth,
                                 json={"body": "Hello", "target": {"all": True},
                                       "send_at": past})
    assert pairs(await problem(resp, 422, "validation_failed")) == [("send_at", "out_of_range")]


async def test_a_broadcast_needs_a_body_or_a_template(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.post("/api/v1/broadcasts/preview", headers=church.auth,
                                 json={"target": {"all": True}})
    assert pairs(await problem(resp, 422, "validation_failed")) == [("", "invalid")]


async def test_a_wrong_method_is_405_with_allow(api_client: Client) -> None:
    church: Church = await register(api_client)
    for method, path, allowed in (
        ("PATCH", "/api/v1/members/export", {"GET", "HEAD"}),
        ("DELETE", "/api/v1/members/import", {"POST"}),
        ("GET", "/api/v1/broadcasts/preview", {"POST"}),
        ("DELETE", "/api/v1/numbers/available", {"GET", "HEAD"}),
    ):
        resp = await api_client.request(method, path, headers=church.auth)
        await problem(resp, 405, "method_not_allowed")
        assert {m.strip() for m in resp.headers["Allow"].split(",")} == allowed, path
    # a member id that is not a UUID is still 404
    resp = await api_client.get("/api/v1/members/not-a-uuid", headers=church.auth)
    await problem(resp, 404, "not_found")
