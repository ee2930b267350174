"""Billing: the plan catalogue, the Stripe adapter and the Stripe simulator."""
