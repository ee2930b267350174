"""Tenancy core: provisioning, placement, templates, pool actors and their supervisor."""
