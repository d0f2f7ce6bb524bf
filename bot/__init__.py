"""The space-policy bot: a curated, dated, cited answer engine with a Discord bot and a CLI over it."""

__version__ = "0.1.0"
