"""Fixtures for the s3 server."""
