"""Accounts and authentication: passwords, tokens, MFA, throttling, roles, middleware."""
