"""Structured logs (structlog) and Prometheus metrics."""
