"""The one schema (Alembic is its only authority), the engine and its dialect rules, migrations."""
