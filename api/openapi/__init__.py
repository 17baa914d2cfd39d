"""The service's OpenAPI documents: problem+json error responses added to every operation
(``problems``) and the 3.0 translation of FastAPI's 3.1 document for OGC API clients (``v30``).
"""
