"""Exceptions the shells turn into clear messages (kept light: importing this loads nothing heavy)."""


class EncoderUnavailableError(RuntimeError):
    """The configured embedding model cannot be loaded (missing, not local, or broken)."""
