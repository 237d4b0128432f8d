"""The revisions, oldest first; alembic loads them by path (this file makes them part of the installed package)."""
