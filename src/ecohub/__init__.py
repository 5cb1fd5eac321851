"""ecohub: an open platform for running a hardware ecosystem."""
