"""The GraphQL layer: canonical types, the root Query, and the per-request context."""
