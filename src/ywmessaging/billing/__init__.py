"""Billing: the plan catalogue, the church's subscription state, plan limits and dunning."""
