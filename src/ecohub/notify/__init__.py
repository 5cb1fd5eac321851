"""Notifications: what the hub tells a user (a device went offline, a rule fired, a home was shared)."""
