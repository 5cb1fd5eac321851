"""Consent ledger, data map, data-subject requests, per-subject keys, audit log."""
