"""Data Resource Generator: database and REST API as configuration."""

__version__ = "0.1.0"
