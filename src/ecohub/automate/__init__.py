"""Rules: trigger → conditions → actions, evaluated on the ingest stream and on schedules."""
