"""Test helpers: a deterministic fake encoder and small knowledge folders."""
