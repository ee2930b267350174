"""Integrations with the church's other systems: Planning Center (OAuth connect, People sync,
signed webhooks) and its simulator."""
