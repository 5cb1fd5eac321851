"""Provisioning, device credentials, the broker adapters and topic ACL, the ingest pipeline, commands."""
