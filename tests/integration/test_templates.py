"""Templates over HTTP: the seeded defaults, CRUD with categories, validation, isolation."""

from __future__ import annotations

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client, problem, register

URL = "/api/v1/templates"


async def test_new_church_has_default_templates_in_every_category(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.get(URL, headers=church.auth)
    body = await resp.json()
    assert resp.status == 200, body
    defaults = [t for t in body["items"] if t["is_default"]]
    assert len(defaults) >= 7
    assert {t["category"] for t in defaults} == {
        "service_reminder", "event", "prayer", "thank_you", "welcome", "offering", "general"}
    assert all(t["segments"] == 1 and t["encoding"] == "gsm7" for t in defaults)
    only = await (await api_client.get(URL + "?category=prayer", headers=church.auth)).json()
    assert only["items"] and {t["category"] for t in only["items"]} == {"prayer"}


async def test_create_read_update_delete_and_audit(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.post(URL, headers=church.auth, json={
        "name": " Easter ", "body": "He is risen!\nJoin us at 9.", "category": "event"})
    made = await resp.json()
    assert resp.status == 201, made
    assert made["name"] == "Easter" and made["is_default"] is False
    assert made["body"] == "He is risen!\nJoin us at 9."
    url = f"{URL}/{made['id']}"
    got = await (await api_client.get(url, headers=church.auth)).json()
    assert got["id"] == made["id"] and got["category"] == "event"
    resp = await api_client.patch(url, headers=church.auth, json={"body": "Héllo 🌅"})
    changed = await resp.json()
    assert resp.status == 200, changed
    assert changed["body"] == "Héllo 🌅" and changed["encoding"] == "ucs2"
    assert changed["name"] == "Easter"
    assert (await api_client.delete(url, headers=church.auth)).status == 204
    await problem(await api_client.get(url, headers=church.auth), 404, "not_found")
    await problem(await api_client.delete(url, headers=church.auth), 404, "not_found")
    log = await (await api_client.get("/api/v1/audit-log?action=template",
                                      headers=church.auth)).json()
    assert [e["action"] for e in log["items"]] == [
        "template.delete", "template.update", "template.create"]
    assert all(e["target_id"] == made["id"] for e in log["items"])


async def test_bad_input_is_refused_with_stable_codes(api_client: Client) -> None:
    church = await register(api_client)
    for bad in ({"name": "x"}, {"name": "x", "body": ""}, {"name": "x", "body": "a" * 1601},
                {"name": "x", "body": "ok", "category": "gossip"},
                {"name": "x", "body": "ok", "is_default": True},
                {"name": "x", "body": "bell\x07"}, {"name": "", "body": "ok"}):
        await problem(await api_client.post(URL, headers=church.auth, json=bad),
                      422, "validation_failed")
    await problem(await api_client.post(
        URL, data="{nope", headers={**church.auth, "Content-Type": "application/json"}),
        400, "invalid_json")
    await problem(await api_client.get(URL + "?category=gossip", headers=church.auth),
                  422, "validation_failed")
    await problem(await api_client.get(URL + "/not-a-uuid", headers=church.auth),
                  404, "not_found")
    made = await (await api_client.post(URL, headers=church.auth,
                                        json={"name": "n", "body": "b"})).json()
    await problem(await api_client.patch(f"{URL}/{made['id']}", headers=church.auth, json={}),
                  422, "validation_failed")
    await problem(await api_client.get(URL), 401, "unauthorized")


async def test_another_churchs_template_is_not_found(api_client: Client) -> None:
    a, b = await register(api_client), await register(api_client)
    made = await (await api_client.post(URL, headers=a.auth,
                                        json={"name": "Secret", "body": "for A"})).json()
    url = f"{URL}/{made['id']}"
    await problem(await api_client.get(url, headers=b.auth), 404, "not_found")
    await problem(await api_client.patch(url, headers=b.auth, json={"name": "mine"}),
                  404, "not_found")
    await problem(await api_client.delete(url, headers=b.auth), 404, "not_found")
    listing = await (await api_client.get(URL, headers=b.auth)).json()
    assert made["id"] not in {t["id"] for t in listing["items"]}
    assert (await api_client.get(url, headers=a.auth)).status == 200
