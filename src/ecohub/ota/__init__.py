"""Over-the-air firmware: signed images, staged campaigns with an automatic halt, per-device progress."""
