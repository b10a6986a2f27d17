"""The version of skjule, in one place: read by pyproject.toml at build time."""

__version__ = "0.1.0.dev0"
