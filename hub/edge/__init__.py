"""The edge: the Starlette app and everything a request meets before GraphQL runs.

``app`` (``create_app`` and the lifespan that owns every resource), ``runtime`` (what the
lifespan made), ``pipeline`` (one POST /graphql: admitted, audited, answered) and ``body``
(reading and parsing the request body within its limits).
"""
