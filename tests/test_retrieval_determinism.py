"""Lexical scores are the same in every process: float32 sums added in a fixed order, not in the order
a set happens to iterate in (which depends on the process's hash seed)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import hashlib
from pathlib import Path
from bot.core.knowledge import load_knowledge
from bot.core.retrieval import LexicalIndex
from bot.core.text import tokenize
knowledge = load_knowledge(Path("knowledge")).knowledge
lexical = LexicalIndex(list(knowledge.passages.values()))
words = tokenize("nasa esa jaxa roscosmos csa iss station russia china moon lunar gateway artemis accords treaty "
                 "budget congress senate house launch module orbit deorbit vehicle spacex boeing starliner dragon")
digest = hashlib.sha256(lexical.bm25(words).tobytes() + lexical.alias_scores(words).tobytes())
print(digest.hexdigest())
"""


def _scores_digest(hash_seed: int) -> str:
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          check=True, timeout=120)
    return done.stdout.strip()


def test_lexical_scores_are_bit_identical_whatever_the_hash_seed() -> None:
    digests = {_scores_digest(seed) for seed in range(6)}
    assert len(digests) == 1
