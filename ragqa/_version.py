"""The version, in a module of its own so that any module may read it without importing
the package face (httpx keeps `__version__.py` the same way)."""

__version__ = "0.1.0"
