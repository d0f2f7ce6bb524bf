"""Alembic migrations of the storage schema (a package so that wheels carry them)."""
