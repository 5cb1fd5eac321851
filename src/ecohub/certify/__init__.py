"""The conformance and security suite run against a real device, reports, the listing gate."""
