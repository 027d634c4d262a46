"""tapedeck's version (``tapedeck --version``; the library's index cache is kept per version)."""

__version__ = "0.1.0"
