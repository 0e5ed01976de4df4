"""What hub workers share through Redis, each falling back to per-process memory: the Redis link
(``redis_link``), the source cache (``cache``), circuit breakers (``breaker``), rate limits
(``ratelimit``), persisted queries (``persisted``) and policy reloads (``policy_sync``).
``state`` makes the cache, the breakers, the limits and the persisted queries from the settings.
"""
