"""Security at the HTTP edge: who the caller is (``identity``: tokens, API keys, the development
stand-in, permission checks), the guards in front of every route (``guards``: body size, rate
limits, NUL bytes), the security headers of every answer (``headers``: CSP and friends), and
their wiring into the app (``wiring``). The rules themselves are the domain's
(``gridcore.security``); scoping in SQL is storage's (``layers.security``).
"""
