"""What a full export holds: every tenant table is either exported, through its allow-list
query `export_table_<table>` in sql/tenant/queries/export_tables.sql (only the columns named
there leave the database), or excluded here with the reason. tests/integration/test_exports.py
fails when a migration adds a table that is neither, so every new table forces a decision.
"""

from __future__ import annotations

from ..db.queries import Query, QuerySet

PREFIX = "export_table_"

# Tables never exported, and why. Secrets are never exported, sealed or hashed alike.
EXCLUDED: dict[str, str] = {
    "refresh_token_families": "login sessions (security plumbing: devices, addresses)",
    "refresh_tokens": "refresh token hashes (secrets)",
    "revoked_access_tokens": "revoked access token ids (security plumbing)",
    "admin_mfa": "sealed TOTP secrets (secrets)",
    "mfa_recovery_codes": "recovery code hashes (secrets)",
    "password_reset_tokens": "password reset token hashes (secrets)",
    "inbound_events": "carrier event ids kept for deduplication for 30 days (plumbing)",
    "exports": "the export jobs themselves",
    "pco_connection": "the Planning Center connection: sealed OAuth tokens (secrets)",
    "pco_sync_runs": "Planning Center sync reports (plumbing; the members they made are exported)",
    # yoyo-migrations' own bookkeeping
    "_yoyo_log": "migration bookkeeping",
    "_yoyo_migration": "migration bookkeeping",
    "_yoyo_version": "migration bookkeeping",
    "yoyo_lock": "migration bookkeeping",
}


def exported(q: QuerySet) -> list[tuple[str, Query]]:
    """(table, its allow-list query) of every exported table, in the file's order."""
    return [(query.name.removeprefix(PREFIX), query) for query in q
            if query.name.startswith(PREFIX)]
