"""Whom the hub trusts, and how it knows: tokens and the subject they name (``identity``),
partner hubs' requester assertions (``federation``), and the key files a hub makes for itself
(``keyfiles``)."""
