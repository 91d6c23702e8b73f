"""Alembic migrations of the hub's schema (SQLite and PostgreSQL); run them with ``pingan-hub db``."""
