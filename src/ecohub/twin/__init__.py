"""The last known state of each device: reported and desired values, version, online/offline."""
