"""YWMESSAGING: multi-tenant SMS messaging backend for churches."""

__version__ = "0.1.0"
