"""Region cells, country → cell, residency enforcement and report."""
