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
    """Each step done or not and since when, and the percentage.

    The brand details date from the last audited change of the legal name or EIN, the number
    from its audited purchase (both: the settings row's last change when no audit row says).
    """
    row = await tq(settings.sql_dir).onboarding_state(conn)
    # step id -> since when it is done (None: not done)
    done_at: dict[str, Any] = {
        "church_profile": row["church_profile_at"],
        "create_branch": row["create_branch_at"],
        "add_members": row["add_members_at"],
        "create_group": row["create_group_at"],
        "get_phone_number": row["get_phone_number_at"],
        "send_message": row["send_message_at"],
    }
    steps = [{"id": sid, "title": title, "completed": done_at[sid] is not None,
              "completed_at": done_at[sid]} for sid, title in STEPS]
    done = sum(1 for s in steps if s["completed"])
    return {"steps": steps, "completed": done, "total": len(steps),
            "percentage": round(100 * done / len(steps)), "is_complete": done == len(steps)}
