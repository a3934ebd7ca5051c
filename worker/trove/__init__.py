"""Trove: a self-hosted archive of your own social media."""

__version__ = "0.1.0"
