"""Operator commands' logic: bootstrap, migration fan-out, doctor, tenant and server admin."""
