"""The developer platform: third-party apps, OAuth grants of users' devices, quotas and signed push."""
