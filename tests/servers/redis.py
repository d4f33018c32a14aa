"""Fixtures for the redis server."""
