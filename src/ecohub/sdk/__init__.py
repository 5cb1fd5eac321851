"""The device SDK partner firmware would use, and the fleet simulator built on it."""
