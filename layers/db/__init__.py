"""The database itself: the embedded private cluster, the engine and its pool, migrations,
backup and restore, server-side prepared statements and bulk COPY.

May import ``gridcore`` (errors, settings) only: every other storage package builds on this one.
"""
