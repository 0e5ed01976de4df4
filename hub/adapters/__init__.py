"""Source adapters: one vendor protocol per module; the contract is in ``base``."""
