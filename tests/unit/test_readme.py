"""The README works in a clone: its links resolve inside the repository, and its tour shows
the `Authorization` header and the carrier simulator's `/sim/*` endpoints."""

from __future__ import annotations

import re

from ywmessaging.config import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_relative_link_resolves_inside_the_repository() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    assert links
    for link in links:
        if link.startswith(("http://", "https://", "#", "mailto:")):
            continue
        target = (REPO_ROOT / link.split("#", 1)[0]).resolve()
        assert target.is_relative_to(REPO_ROOT.resolve()), f"{link} leaves the repository"
        assert target.exists(), f"{link} does not exist in a clone"


def test_the_tour_shows_the_authorization_header_and_the_simulator() -> None:
    tour = README[README.index("A quick tour"):]
    tour = tour[:tour.index("```", tour.index("```sh") + 5)]
    assert "Authorization: Bearer $TOKEN" in tour
    assert '-H "$AUTH"' in tour
    for path in ("/sim/messages", "/sim/inbound"):
        assert f"localhost:8081{path}" in tour
    # the two pages a reader keeps open: the API docs and the simulator's phones page
    assert "http://127.0.0.1:8080/docs" in tour
    assert "http://127.0.0.1:8081/" in tour
