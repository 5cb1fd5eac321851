"""The FastAPI app: /api/v1 routers per context, auth, OpenAPI."""
