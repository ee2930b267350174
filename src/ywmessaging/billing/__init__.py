"""Billing: the plan catalogue, the church's subscription state, plan limits and dunning, the
Stripe adapter and the Stripe simulator."""
