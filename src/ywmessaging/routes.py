"""The route table: every route of the service, with the handler and what guards it.

Root routes are served outside `/api/v1`; a root guard is a check run before the handler
(OPEN: none). Every `/api/v1` request passes two middlewares, in this order:
`authenticate` (auth/middleware.py: the access token, then the route's permission against the
token's role; PUBLIC needs no token; it sets the tenant from the token) and `tenant_lease`
(tenants/middleware.py: one connection of that tenant's database for the request).

A handler parses its input, calls one data function with the leased connection and answers;
each section names the data module and the named-query files (`sql/*/queries/`) it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from .api import (
    account,
    admins,
    analytics,
    audit_log,
    auth,
    billing,
    branches,
    broadcasts,
    church,
    compliance,
    conversations,
    docs,
    events,
    groups,
    health,
    imports,
    members,
    nps,
    numbers,
    onboarding,
    ops,
    planning_center,
    recurring,
    templates,
    webhooks,
)
from .api.validation import UUID_ID
from .auth.middleware import authenticate_middleware
from .auth.permissions import PUBLIC, public, requires
from .auth.permissions import Permission as P
from .tenants.middleware import lease_middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Guard = Callable[[web.Request], Awaitable[None]]
OPEN: Guard | None = None


@dataclass(frozen=True)
class Root:
    """A root route: its guard runs before the handler (and may refuse the request)."""

    method: str
    path: str
    handler: Handler
    guard: Guard | None
    name: str


@dataclass(frozen=True)
class Api:
    """An `/api/v1` route: `authenticate` refuses a token whose role lacks `needs`."""

    method: str
    path: str
    handler: Handler
    needs: P | str   # a Permission, or PUBLIC
    name: str


ROOT: tuple[Root, ...] = (
    # Process health and readiness, metrics, the contract: api/health.py (no SQL but readiness's
    # `SELECT 1` and the registry's migration version)
    Root("GET", "/healthz", health.healthz, OPEN, "healthz"),
    Root("GET", "/readyz", health.readyz, OPEN, "readyz"),
    Root("GET", "/metrics", health.metrics, OPEN, "metrics"),
    Root("GET", "/openapi.yaml", health.openapi, OPEN, "openapi"),
    # The contract, browsable: api/docs.py (Swagger UI's files from the swagger-ui-py package)
    Root("GET", "/docs", docs.docs_page, OPEN, "docs"),
    Root("GET", "/docs/{asset}", docs.docs_asset, OPEN, "docs_asset"),
    # Operators: api/ops.py → tenants/status.py (this process's pool; no SQL)
    Root("GET", "/ops/tenants/{id}/pool", ops.tenant_pool, ops.operator_token,
         "ops_tenant_pool"),
    # The carrier's webhooks: api/webhooks.py → messaging/webhooks.py; SQL registry webhooks.sql
    # (stored, answered, then applied by messaging/dispatcher.py)
    Root("POST", "/webhooks/telnyx", webhooks.telnyx_webhook, webhooks.carrier_signature,
         "webhooks_telnyx"),
    # Stripe's webhooks: api/webhooks.py → billing/webhooks.py; SQL registry webhooks.sql,
    # billing.sql (stored, answered, then applied by the dispatcher of billing/plugins.py)
    Root("POST", "/webhooks/stripe", webhooks.stripe_webhook, webhooks.stripe_signature,
         "webhooks_stripe"),
    # Planning Center's webhooks: api/planning_center.py → integrations/pco_webhooks.py; SQL
    # registry planning_center.sql (HMAC checked against the organization's secrets, the
    # church's sync made due, answered; the runner of integrations/plugins.py syncs)
    Root("POST", "/webhooks/planning-center", planning_center.webhook,
         planning_center.pco_signature, "webhooks_planning_center"),
)

API_V1: tuple[Api, ...] = (
    # Sign-up, login, tokens, MFA: api/auth.py → auth/ (accounts, login, sessions, mfa_flows);
    # SQL tenant admins.sql, auth_tokens.sql, mfa.sql; registry logins.sql, throttle.sql
    Api("POST", "/auth/register", auth.register, PUBLIC, "auth_register"),
    Api("POST", "/auth/login", auth.login_route, PUBLIC, "auth_login"),
    Api("POST", "/auth/mfa/verify", auth.mfa_verify, PUBLIC, "auth_mfa_verify"),
    Api("POST", "/auth/refresh", auth.refresh, PUBLIC, "auth_refresh"),
    Api("POST", "/auth/logout", auth.logout, PUBLIC, "auth_logout"),
    Api("GET", "/auth/me", auth.me, P.SELF, "auth_me"),
    Api("POST", "/auth/password", auth.change_password, P.SELF, "auth_password"),
    Api("POST", "/auth/password-reset", auth.password_reset, PUBLIC, "auth_password_reset"),
    Api("POST", "/auth/password-reset/confirm", auth.password_reset_confirm, PUBLIC,
        "auth_password_reset_confirm"),
    Api("POST", "/auth/invitations/accept", auth.accept_invitation, PUBLIC,
        "auth_invitation_accept"),
    Api("POST", "/auth/mfa/setup", auth.mfa_setup, P.SELF, "auth_mfa_setup"),
    Api("POST", "/auth/mfa/enable", auth.mfa_enable, P.SELF, "auth_mfa_enable"),
    Api("POST", "/auth/mfa/disable", auth.mfa_disable, P.SELF, "auth_mfa_disable"),
    Api("POST", "/auth/mfa/recovery-codes", auth.mfa_recovery_codes, P.SELF,
        "auth_mfa_recovery_codes"),
    # Co-admins: api/admins.py → auth/admins.py; SQL tenant admins.sql, registry logins.sql
    Api("GET", "/admins", admins.list_admins, P.ADMINS_READ, "admins_list"),
    Api("POST", "/admins", admins.invite, P.ADMINS_MANAGE, "admins_invite"),
    Api("PATCH", "/admins/{id}", admins.update, P.ADMINS_MANAGE, "admins_update"),
    Api("DELETE", "/admins/{id}", admins.remove, P.ADMINS_MANAGE, "admins_remove"),
    # Phone numbers: api/numbers.py → messaging/numbers_service.py, number_release.py (archive,
    # recover) and the carrier;
    # SQL registry numbers.sql, tenant numbers.sql
    Api("GET", "/numbers/available", numbers.available, P.NUMBERS_MANAGE, "numbers_available"),
    Api("GET", "/numbers", numbers.list_numbers, P.CHURCH_READ, "numbers_list"),
    Api("POST", "/numbers", numbers.buy, P.NUMBERS_MANAGE, "numbers_buy"),
    Api("PATCH", "/numbers/{id:\\+[0-9]+}", numbers.update, P.NUMBERS_MANAGE, "numbers_update"),
    Api("DELETE", "/numbers/{id:\\+[0-9]+}", numbers.release, P.NUMBERS_MANAGE, "numbers_release"),
    Api("POST", "/numbers/{id:\\+[0-9]+}/recover", numbers.recover, P.NUMBERS_MANAGE,
        "numbers_recover"),
    # Members: api/members.py → church/members.py; SQL tenant members.sql
    Api("GET", "/members", members.list_members, P.MEMBERS_READ, "members_list"),
    Api("POST", "/members", members.create_member, P.MEMBERS_WRITE, "members_create"),
    Api("GET", f"/members/{UUID_ID}", members.get_member, P.MEMBERS_READ, "members_get"),
    Api("PATCH", f"/members/{UUID_ID}", members.update_member, P.MEMBERS_WRITE, "members_update"),
    Api("DELETE", f"/members/{UUID_ID}", members.delete_member, P.MEMBERS_WRITE, "members_delete"),
    Api("POST", "/members/{id}/opt-out", members.opt_out, P.MEMBERS_WRITE, "members_opt_out"),
    Api("POST", "/members/{id}/opt-in", members.opt_in, P.MEMBERS_WRITE, "members_opt_in"),
    Api("GET", "/members/{id}/consent", members.consent, P.MEMBERS_READ, "members_consent"),
    # Groups: api/groups.py → church/groups.py; SQL tenant groups.sql
    Api("GET", "/groups", groups.list_groups, P.MEMBERS_READ, "groups_list"),
    Api("POST", "/groups", groups.create_group, P.MEMBERS_WRITE, "groups_create"),
    Api("GET", "/groups/{id}", groups.get_group, P.MEMBERS_READ, "groups_get"),
    Api("PATCH", "/groups/{id}", groups.update_group, P.MEMBERS_WRITE, "groups_update"),
    Api("DELETE", "/groups/{id}", groups.delete_group, P.MEMBERS_WRITE, "groups_delete"),
    Api("POST", "/groups/{id}/members", groups.add_members, P.MEMBERS_WRITE, "groups_members_add"),
    Api("DELETE", "/groups/{id}/members", groups.remove_members, P.MEMBERS_WRITE,
        "groups_members_remove"),
    # Branches: api/branches.py → church/branches.py; SQL tenant branches.sql
    Api("GET", "/branches", branches.list_branches, P.MEMBERS_READ, "branches_list"),
    Api("POST", "/branches", branches.create_branch, P.BRANCHES_WRITE, "branches_create"),
    Api("GET", "/branches/{id}", branches.get_branch, P.MEMBERS_READ, "branches_get"),
    Api("PATCH", "/branches/{id}", branches.update_branch, P.BRANCHES_WRITE, "branches_update"),
    Api("DELETE", "/branches/{id}", branches.delete_branch, P.BRANCHES_WRITE, "branches_delete"),
    # CSV import and export: api/imports.py → church/imports.py, import_jobs.py, csvio.py;
    # SQL tenant imports.sql, members.sql
    Api("POST", "/members/import", imports.import_members, P.MEMBERS_WRITE, "members_import"),
    Api("GET", "/imports/{id}", imports.get_import, P.MEMBERS_READ, "imports_get"),
    Api("GET", "/members/export", imports.export_members, P.MEMBERS_EXPORT, "members_export"),
    # The church's full export (owner only): api/account.py → church/exports.py, export_writer.py
    # (a background job: church/export_runner.py); SQL tenant exports.sql, export_tables.sql
    Api("POST", "/account/export", account.start_export, P.ACCOUNT_EXPORT, "account_export"),
    Api("GET", "/account/exports", account.list_exports, P.ACCOUNT_EXPORT, "account_exports_list"),
    Api("GET", f"/account/exports/{UUID_ID}", account.download_export, P.ACCOUNT_EXPORT,
        "account_exports_download"),
    # The church's deletion (owner only; 30 days of grace, then ops/teardown.py):
    # api/account.py → tenants/lifecycle.py, auth/stepup.py; SQL registry lifecycle.sql
    Api("GET", "/account/deletion", account.get_deletion, P.CHURCH_CLOSE,
        "account_deletion_get"),
    Api("POST", "/account/deletion", account.schedule_deletion, P.CHURCH_CLOSE,
        "account_deletion_schedule"),
    Api("DELETE", "/account/deletion", account.cancel_deletion, P.CHURCH_CLOSE,
        "account_deletion_cancel"),
    # Templates: api/templates.py → church/templates.py; SQL tenant templates.sql
    Api("GET", "/templates", templates.list_templates, P.TEMPLATES_READ, "templates_list"),
    Api("POST", "/templates", templates.create_template, P.TEMPLATES_WRITE, "templates_create"),
    Api("GET", "/templates/{id}", templates.get_template, P.TEMPLATES_READ, "templates_get"),
    Api("PATCH", "/templates/{id}", templates.update_template, P.TEMPLATES_WRITE,
        "templates_update"),
    Api("DELETE", "/templates/{id}", templates.delete_template, P.TEMPLATES_WRITE,
        "templates_delete"),
    # The church's settings: api/church.py → church/settings.py; SQL tenant settings.sql, church.sql
    Api("GET", "/church", church.get_church, P.CHURCH_READ, "church_get"),
    Api("PATCH", "/church", church.update_church, P.CHURCH_MANAGE, "church_update"),
    # 10DLC registration: api/compliance.py → messaging/compliance.py and the carrier;
    # SQL tenant compliance.sql, settings.sql; registry compliance.sql
    Api("GET", "/church/compliance", compliance.get_compliance, P.CHURCH_READ,
        "compliance_get"),
    Api("POST", "/church/compliance/brand", compliance.register_brand, P.CHURCH_MANAGE,
        "compliance_brand"),
    Api("POST", "/church/compliance/campaign", compliance.submit_campaign, P.CHURCH_MANAGE,
        "compliance_campaign"),
    # Analytics: api/analytics.py → church/analytics.py; SQL tenant analytics.sql
    Api("GET", "/analytics/summary", analytics.summary, P.ANALYTICS_READ, "analytics_summary"),
    Api("GET", "/analytics/messages", analytics.messages, P.ANALYTICS_READ, "analytics_messages"),
    Api("GET", "/analytics/members", analytics.members, P.ANALYTICS_READ, "analytics_members"),
    Api("GET", "/analytics/branches", analytics.branches, P.ANALYTICS_READ, "analytics_branches"),
    # Billing: api/billing.py → billing/usage.py, billing/state.py, billing/account.py (Stripe);
    # SQL registry billing.sql, tenant plan_limits.sql
    Api("GET", "/billing/plan", billing.plan, P.BILLING_MANAGE, "billing_plan"),
    Api("GET", "/billing/usage", billing.usage, P.BILLING_MANAGE, "billing_usage"),
    Api("POST", "/billing/checkout", billing.checkout, P.BILLING_MANAGE, "billing_checkout"),
    Api("POST", "/billing/portal", billing.portal, P.BILLING_MANAGE, "billing_portal"),
    Api("GET", "/billing/invoices", billing.invoices, P.BILLING_MANAGE, "billing_invoices"),
    # Planning Center: api/planning_center.py → integrations/ (pco_connection.py: OAuth with
    # PKCE, sealed tokens; pco_runner.py, pco_sync.py, pco_people.py: the sync);
    # SQL tenant planning_center.sql, registry planning_center.sql. The callback is reached by
    # the browser without a token: the signed, stored `state` names the church and the admin.
    Api("GET", "/integrations/planning-center", planning_center.get_status, P.CHURCH_READ,
        "pco_get"),
    Api("PATCH", "/integrations/planning-center", planning_center.update, P.CHURCH_MANAGE,
        "pco_update"),
    Api("DELETE", "/integrations/planning-center", planning_center.disconnect, P.CHURCH_MANAGE,
        "pco_disconnect"),
    Api("POST", "/integrations/planning-center/connect", planning_center.connect,
        P.CHURCH_MANAGE, "pco_connect"),
    Api("GET", "/integrations/planning-center/callback", planning_center.callback, PUBLIC,
        "pco_callback"),
    Api("POST", "/integrations/planning-center/sync", planning_center.sync, P.MEMBERS_WRITE,
        "pco_sync"),
    # Onboarding: api/onboarding.py → church/onboarding.py; SQL tenant church.sql
    Api("GET", "/onboarding", onboarding.onboarding, P.CHURCH_READ, "onboarding_get"),
    # NPS: api/nps.py → church/nps.py; SQL tenant nps.sql
    Api("POST", "/nps", nps.submit, P.NPS_SUBMIT, "nps_submit"),
    Api("GET", "/nps", nps.list_responses, P.ANALYTICS_READ, "nps_list"),
    Api("GET", "/nps/summary", nps.summary, P.ANALYTICS_READ, "nps_summary"),
    # Audit log: api/audit_log.py → church/audit_log.py; SQL tenant audit_read.sql
    Api("GET", "/audit-log", audit_log.list_audit_log, P.AUDIT_READ, "audit_log_list"),
    # Broadcasts: api/broadcasts.py → messaging/broadcasts.py; SQL tenant broadcasts.sql (bc_*),
    # settings.sql, audit.sql; registry work.sql (the church's turn in the send queue)
    Api("POST", "/broadcasts", broadcasts.create, P.MESSAGES_SEND, "broadcasts_create"),
    Api("POST", "/broadcasts/preview", broadcasts.preview, P.MESSAGES_SEND, "broadcasts_preview"),
    Api("GET", "/broadcasts", broadcasts.list_broadcasts, P.MESSAGES_READ, "broadcasts_list"),
    Api("GET", f"/broadcasts/{UUID_ID}", broadcasts.get, P.MESSAGES_READ, "broadcasts_get"),
    Api("GET", "/broadcasts/{id}/recipients", broadcasts.recipients, P.MESSAGES_READ,
        "broadcasts_recipients"),
    Api("POST", "/broadcasts/{id}/cancel", broadcasts.cancel, P.MESSAGES_SEND, "broadcasts_cancel"),
    Api("POST", "/broadcasts/{id}/retry-failed", broadcasts.retry_failed, P.MESSAGES_SEND,
        "broadcasts_retry_failed"),
    # Recurring messages: api/recurring.py → messaging/recurring.py; SQL tenant recurring.sql
    Api("GET", "/recurring", recurring.list_rules, P.MESSAGES_READ, "recurring_list"),
    Api("POST", "/recurring", recurring.create, P.MESSAGES_SEND, "recurring_create"),
    Api("GET", "/recurring/{id}", recurring.get, P.MESSAGES_READ, "recurring_get"),
    Api("PATCH", "/recurring/{id}", recurring.update, P.MESSAGES_SEND, "recurring_update"),
    Api("DELETE", "/recurring/{id}", recurring.delete, P.MESSAGES_SEND, "recurring_delete"),
    Api("POST", "/recurring/{id}/pause", recurring.pause, P.MESSAGES_SEND, "recurring_pause"),
    Api("POST", "/recurring/{id}/resume", recurring.resume, P.MESSAGES_SEND, "recurring_resume"),
    # Conversations: api/conversations.py → messaging/conversations.py;
    # SQL tenant conversations.sql
    Api("GET", "/conversations", conversations.list_conversations, P.MESSAGES_READ,
        "conversations_list"),
    Api("POST", "/conversations", conversations.start, P.MESSAGES_SEND, "conversations_start"),
    Api("GET", "/conversations/{id}", conversations.get, P.MESSAGES_READ, "conversations_get"),
    Api("PATCH", "/conversations/{id}", conversations.update, P.MESSAGES_SEND,
        "conversations_update"),
    Api("GET", "/conversations/{id}/messages", conversations.thread, P.MESSAGES_READ,
        "conversations_thread"),
    Api("POST", "/conversations/{id}/messages", conversations.reply, P.MESSAGES_SEND,
        "conversations_reply"),
    Api("POST", "/conversations/{id}/read", conversations.mark_read, P.MESSAGES_SEND,
        "conversations_read"),
    # Live events: api/events.py → events/ (hub.py, tickets.py); SQL registry events.sql.
    # The socket is PUBLIC here because its handler authenticates itself (ticket, Bearer, or
    # the access cookie from a configured Origin) and holds no tenant lease.
    Api("GET", "/events", events.events_socket, PUBLIC, "events_socket"),
    Api("POST", "/events/ticket", events.ticket, P.MESSAGES_READ, "events_ticket"),
)


def add_root_routes(app: web.Application) -> None:
    """Register ROOT on the root application."""
    app.router.add_routes([web.route(r.method, r.path, _guarded(r.handler, r.guard), name=r.name)
                           for r in ROOT])


# What a suspended church may still do (everything else answers 423 `tenant_suspended`): pay
# (billing), take its data away (export) and delete its account; and its owner, who may sign
# in (auth/login.py), sees who they are.
WHILE_SUSPENDED = frozenset(
    r.name for r in API_V1
    if r.path.startswith(("/billing/", "/account/export", "/account/deletion"))
    or r.path == "/auth/me")


def api_v1_middlewares() -> list[Middleware]:
    """`authenticate`, then `tenant_lease` (it leases for the tenant `authenticate` set)."""
    return [authenticate_middleware(), lease_middleware(WHILE_SUSPENDED)]


def build_api_v1() -> web.Application:
    """The `/api/v1` sub-application: its two middlewares and API_V1 (mount it with
    `add_subapp`, which freezes it)."""
    api = web.Application(middlewares=api_v1_middlewares())
    api.router.add_routes([web.route(r.method, r.path, _marked(r.handler, r.needs), name=r.name)
                           for r in API_V1])
    return api


def _guarded(handler: Handler, guard: Guard | None) -> Handler:
    if guard is None:
        return handler

    @functools.wraps(handler)
    async def route(request: web.Request) -> web.StreamResponse:
        await guard(request)
        return await handler(request)

    return route


def _marked(handler: Handler, needs: P | str) -> Handler:
    """The handler, wrapped, carrying the marker `authenticate` reads (the handler function
    itself stays unmarked: a permission belongs to a route)."""

    @functools.wraps(handler)
    async def route(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    if needs == PUBLIC:
        return public(route)
    if not isinstance(needs, P):
        raise ValueError(f"unknown permission {needs!r}")
    return requires(needs)(route)
