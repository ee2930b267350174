"""The route table: what it lists is what the application serves, each route with its guard."""

from __future__ import annotations

from ywmessaging import routes
from ywmessaging.api import imports, ops, webhooks
from ywmessaging.app import create_app
from ywmessaging.auth.permissions import PUBLIC, Permission, route_permission
from ywmessaging.config import Settings
from ywmessaging.keys import API_V1
from ywmessaging.time_limits import _MARK as TIME_LIMIT_MARK
from ywmessaging.time_limits import IMPORT, UNLIMITED


def test_every_api_route_is_served_with_the_permission_the_table_gives() -> None:
    api = create_app(Settings())[API_V1]
    served = {route.name: route_permission(route.handler) for route in api.router.routes()
              if route.name is not None}
    assert served == {r.name: r.needs for r in routes.API_V1}
    assert all(r.needs == PUBLIC or isinstance(r.needs, Permission) for r in routes.API_V1)


def test_route_names_are_unique_and_every_root_route_is_served() -> None:
    names = [r.name for r in (*routes.ROOT, *routes.API_V1)]
    assert len(names) == len(set(names))
    app = create_app(Settings())
    assert {r.name for r in routes.ROOT} <= {r.name for r in app.router.routes()}


def test_the_table_marks_routes_not_handler_functions() -> None:
    assert route_permission(imports.import_members) is None
    api = routes.build_api_v1()
    by_name = {r.name: r.handler for r in api.router.routes() if r.name}
    # the wrapper keeps the handler's own markers (its time limit class)
    assert getattr(by_name["members_import"], TIME_LIMIT_MARK) == IMPORT
    assert getattr(by_name["members_export"], TIME_LIMIT_MARK) == UNLIMITED


def test_root_guards() -> None:
    guards = {r.name: r.guard for r in routes.ROOT}
    assert guards["ops_tenant_pool"] is ops.operator_token
    assert guards["webhooks_telnyx"] is webhooks.carrier_signature
    assert {name for name, guard in guards.items() if guard is routes.OPEN} == {
        "healthz", "readyz", "metrics", "openapi", "docs", "docs_asset"}


def test_a_suspended_church_may_pay_take_its_data_and_close_nothing_else() -> None:
    """The routes a suspended church still reaches (every other answers 423): a new entry
    here is a decision, not an accident."""
    reached = routes.WHILE_SUSPENDED
    assert reached == {
        "auth_me", "billing_plan", "billing_usage", "billing_checkout", "billing_portal",
        "billing_invoices", "account_export", "account_exports_list", "account_exports_download",
        "account_deletion_get", "account_deletion_schedule", "account_deletion_cancel"}
