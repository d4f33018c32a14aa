"""Fixtures for the postgres server."""
