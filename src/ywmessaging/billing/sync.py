"""`ywm billing sync-catalogue`: the catalogue's products and prices on a Stripe account,
made once (found again by lookup key; creations carry idempotency keys), so a second run
makes nothing and a changed amount makes one new price that takes the lookup key over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .catalogue import CURRENCY, NUMBER_SETUP_FEE_CENTS, NUMBER_SETUP_LOOKUP_KEY, Plan
from .stripe_client import StripeBilling


@dataclass(frozen=True, slots=True)
class WantedPrice:
    """A price the catalogue needs: its product, lookup key, amount and interval."""

    product_id: str
    product_name: str
    lookup_key: str
    unit_amount: int
    interval: str | None


@dataclass
class SyncReport:
    """What a sync did: products made, and each lookup key `created`, `replaced` or `kept`."""

    products_created: list[str] = field(default_factory=list)
    prices: dict[str, tuple[str, str]] = field(default_factory=dict)   # key → (what, price id)

    @property
    def changed(self) -> bool:
        """Whether anything was made."""
        return bool(self.products_created) or any(what != "kept"
                                                  for what, _ in self.prices.values())


def wanted_prices(plans: Sequence[Plan], *,
                  setup_fee_cents: int = NUMBER_SETUP_FEE_CENTS) -> list[WantedPrice]:
    """Every price of the catalogue: each plan monthly and yearly, and the setup fee."""
    wanted = []
    for plan in plans:
        product = f"ywm_{plan.code}"
        wanted.append(WantedPrice(product, plan.name, f"{plan.code}_monthly",
                                  plan.monthly_cents, "month"))
        wanted.append(WantedPrice(product, plan.name, f"{plan.code}_annual",
                                  plan.annual_cents, "year"))
    wanted.append(WantedPrice("ywm_number_setup", "Phone number setup",
                              NUMBER_SETUP_LOOKUP_KEY, setup_fee_cents, None))
    return wanted


async def sync_catalogue(client: StripeBilling, plans: Sequence[Plan], *,
                         setup_fee_cents: int = NUMBER_SETUP_FEE_CENTS,
                         dry_run: bool = False) -> SyncReport:
    """Bring the Stripe account's products and prices in line with `plans`."""
    report = SyncReport()
    wanted = wanted_prices(plans, setup_fee_cents=setup_fee_cents)
    existing = await client.prices([w.lookup_key for w in wanted])
    for w in wanted:
        have = existing.get(w.lookup_key)
        if (have is not None and have.unit_amount == w.unit_amount
                and have.currency == CURRENCY and have.interval == w.interval):
            report.prices[w.lookup_key] = ("kept", have.id)
            continue
        what = "created" if have is None else "replaced"
        if dry_run:
            report.prices[w.lookup_key] = (what, "")
            continue
        if w.product_id not in report.products_created and await client.ensure_product(
                w.product_id, w.product_name):
            report.products_created.append(w.product_id)
        price = await client.create_price(product_id=w.product_id, lookup_key=w.lookup_key,
                                          unit_amount=w.unit_amount, currency=CURRENCY,
                                          interval=w.interval)
        report.prices[w.lookup_key] = (what, price.id)
    return report
