"""Fleet security audit: checks over devices and products, findings with severity, acknowledgement and alerts."""
