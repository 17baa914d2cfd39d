"""HTTP: the FastAPI application, its routes, schemas and map pages."""
