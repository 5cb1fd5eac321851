"""FastAPI routers, one module per context (thin: parse, call a service, render)."""
