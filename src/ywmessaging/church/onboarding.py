"""Onboarding progress, derived from the church's data on each request (nothing to mark done:
a step is done when the data shows it, and undone again if the data goes away)."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..sqlq import tenant as tq

# (step id, what it asks of the church); the order is the suggested one.
STEPS = (
    ("church_profile", "Add the church's legal name and EIN (10DLC brand details)"),
    ("create_branch", "Create a branch"),
    ("add_members", "Add or import members"),
    ("create_group", "Create a group"),
    ("get_phone_number", "Get a sending phone number"),
    ("send_message", "Send a first message"),
)


async def progress(conn: Any, settings: Settings) -> dict[str, Any]:
    """Each step done or not (and since when, where the data says), and the percentage."""
    row = await tq(settings.sql_dir).onboarding_state(conn)
    state: dict[str, tuple[bool, Any]] = {
        "church_profile": (bool(row["church_profile"]), None),
        "create_branch": (row["create_branch_at"] is not None, row["create_branch_at"]),
        "add_members": (row["add_members_at"] is not None, row["add_members_at"]),
        "create_group": (row["create_group_at"] is not None, row["create_group_at"]),
        "get_phone_number": (bool(row["get_phone_number"]), None),
        "send_message": (row["send_message_at"] is not None or row["any_message_sent"],
                         row["send_message_at"]),
    }
    steps = [{"id": sid, "title": title, "completed": state[sid][0],
              "completed_at": state[sid][1]} for sid, title in STEPS]
    done = sum(1 for s in steps if s["completed"])
    return {"steps": steps, "completed": done, "total": len(steps),
            "percentage": round(100 * done / len(steps)), "is_complete": done == len(steps)}
