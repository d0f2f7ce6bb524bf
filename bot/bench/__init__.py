"""``spacebot bench``: the engine against a naive sentence-transformers baseline and BM25, side by side.

Entry point: :func:`bot.bench.main.run_benchmarks`. Heavy libraries are imported inside the functions
that measure them, so importing this package costs nothing.
"""
