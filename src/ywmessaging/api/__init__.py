"""HTTP handlers: thin, one module per domain (parse, one data call, respond)."""
