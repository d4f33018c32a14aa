"""Fixtures for the kafka server."""
