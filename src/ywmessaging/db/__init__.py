"""Database plumbing: named queries, DSNs, yoyo migrations, error translation."""
