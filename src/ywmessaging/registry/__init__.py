"""Registry data: database servers, tenants, logins, phone numbers, migration runs."""
