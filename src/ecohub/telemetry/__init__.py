"""Time series of property values and device events; retention; downsampled reads."""
