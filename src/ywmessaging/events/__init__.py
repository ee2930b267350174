"""Live events of a church: published through the registry, fanned out to WebSockets."""
