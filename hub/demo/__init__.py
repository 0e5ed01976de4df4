"""The demo world: simulated vendor systems (real aiohttp servers) over a seeded world."""
