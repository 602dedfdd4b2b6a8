"""FastAPI application: routers, schemas and web pages."""
