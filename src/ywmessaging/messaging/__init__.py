"""Messaging: carrier adapter, simulator, segments, webhooks, inbound processing, numbers."""
