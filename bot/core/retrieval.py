"""Hybrid retrieval: dense FAISS search fused with BM25 and alias matches by reciprocal rank fusion.

The lexical side also powers typo correction: a query word that is not in the knowledge base's
vocabulary but closely matches one that is ("roscomos") is replaced by it ("roscosmos").
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bot.core.acronyms import acronyms_of
from bot.core.knowledge import KnowledgeBase
from bot.core.models import Passage
from bot.core.text import TimeReference, tokenize
from bot.core.vector_index import VectorIndex

if TYPE_CHECKING:
    from bot.core.understand import Query

STOPWORDS = frozenset(
    [
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as",
        "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
        "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further",
        "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in",
        "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no", "nor", "not", "now",
        "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she",
        "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there",
        "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we",
        "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would",
        "you", "your", "yours", "yet", "ever", "still", "going", "gonna", "wanna", "tell", "know", "think",
        "say", "said", "says", "does", "did", "get", "got", "anyone", "anybody", "please", "thanks", "thank",
        "hey", "hi", "hello", "bot", "u", "ur", "im", "i'm", "whats", "what's", "whens", "when's", "hows",
        "how's", "who's", "plan", "plans", "planned"
    ]
)
# People ask who "runs" an agency; passages say who "heads" it or is its "administrator".
_LEADERSHIP = ("head", "chief", "administrator", "leader")
SYNONYMS: dict[str, tuple[str, ...]] = {
    word: _LEADERSHIP
    for word in ("run", "runs", "ran", "running", "lead", "leads", "heads", "headed", "boss")
}
RRF_K = 20
DENSE_WEIGHT = 1.0
BM25_WEIGHT = 0.8
ALIAS_WEIGHT = 0.3
TIME_BONUS = 0.5 / (RRF_K + 1)  # a nudge: the asked time picks positions on a storyline in compose.py
TYPO_MIN_LENGTH = 4
TYPO_CUTOFF = 84.0
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True)
class Candidate:
    """One ranked passage: ``score`` is the fused RRF score, ``dense`` the question-passage cosine."""

    row: int
    passage: Passage
    score: float
    dense: float
    dense_rank: int | None = None  # 1-based rank in the dense ranking, None when not in its pool
    lexical_rank: int | None = None  # 1-based rank in the BM25 ranking, None when no query word matched


class LexicalIndex:
    """BM25 over titles, texts, aliases and tags, plus an alias table and the vocabulary.

    Each (term, passage) pair's BM25 contribution depends only on the knowledge base, so it is computed
    once per snapshot: the postings are one array of rows and one of contributions, sorted by term, and
    a query adds up the slices of its terms.
    """

    def __init__(self, passages: Sequence[Passage], dictionary: frozenset[str] = frozenset()) -> None:
        self.dictionary = dictionary
        self.row_terms: list[frozenset[str]] = []
        term_ids: dict[str, int] = {}
        posting_terms: list[int] = []
        posting_rows: list[int] = []
        posting_counts: list[int] = []
        lengths = np.zeros(len(passages), dtype=np.float32)
        for row, passage in enumerate(passages):
            fields = [passage.title, passage.title, passage.text, *passage.aliases, *passage.tags]
            terms = [t for t in tokenize(" ".join(fields)) if t not in STOPWORDS]
            counts = Counter(terms)
            self.row_terms.append(frozenset(counts))
            lengths[row] = len(terms)
            posting_terms.extend([term_ids.setdefault(term, len(term_ids)) for term in counts])
            posting_rows.extend([row] * len(counts))
            posting_counts.extend(counts.values())
        self._count = len(passages)
        self._term_ids = term_ids
        self._postings_of(np.array(posting_terms, dtype=np.int64), np.array(posting_rows, dtype=np.int64),
                          np.array(posting_counts, dtype=np.float32), lengths)
        self.vocabulary = frozenset(term_ids)
        self.known_words = self.vocabulary | dictionary  # the knowledge base's words and the language's
        self._vocabulary_by_initial: dict[str, list[str]] = defaultdict(list)
        for word in term_ids:
            if len(word) >= TYPO_MIN_LENGTH - 1 and word.isalpha():
                self._vocabulary_by_initial[word[0]].append(word)
        aliases = self._alias_table(passages)
        self._alias_rows = {
            alias: (sorted(rows), math.log(1 + self._count / len(rows))) for alias, rows in aliases.items()
        }
        sizes: dict[str, set[int]] = defaultdict(set)  # by first word: spans of other words are no alias
        for alias in aliases:
            sizes[alias.split(" ", 1)[0]].add(alias.count(" ") + 1)
        self._alias_sizes = {first: sorted(found) for first, found in sizes.items()}
        self._passages = passages

    @functools.cached_property
    def acronyms(self) -> dict[str, str]:
        """What the aliases spell out, worked out on first use: only definitions of acronyms ask (~20 ms)."""
        return acronyms_of(self._passages)

    def _postings_of(self, terms: np.ndarray, rows: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> None:
        """Group the postings by term (rows ascending within a term) with each one's BM25 contribution."""
        order = np.lexsort((rows, terms))
        terms, rows, tf = terms[order], rows[order], tf[order]
        frequencies = np.bincount(terms, minlength=len(self._term_ids))
        self._starts = np.concatenate(([0], np.cumsum(frequencies))).tolist()
        self._frequencies = frequencies.tolist()
        average = float(lengths.mean()) if self._count else 1.0
        idf = np.log(1 + (self._count - frequencies + 0.5) / (frequencies + 0.5))
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[rows] / average)
        self._rows = rows
        self._weights = (idf[terms] * tf * (BM25_K1 + 1) / (tf + norm)).astype(np.float32)

    @staticmethod
    def _alias_table(passages: Sequence[Passage]) -> dict[str, set[int]]:
        table: dict[str, set[int]] = defaultdict(set)
        keys: dict[str, str] = {}  # most aliases recur on many passages of a storyline: tokenize each once
        for row, passage in enumerate(passages):
            for alias in passage.aliases:
                key = keys.get(alias)
                if key is None:
                    key = keys[alias] = " ".join(tokenize(alias))
                if key:
                    table[key].add(row)
        return table

    def idf(self, term: str) -> float:
        """BM25's inverse document frequency; a word the knowledge base never uses gets the highest."""
        term_id = self._term_ids.get(term)
        frequency = self._frequencies[term_id] if term_id is not None else 0
        return math.log(1 + (self._count - frequency + 0.5) / (frequency + 0.5))

    def bm25(self, terms: Sequence[str]) -> np.ndarray:
        scores = np.zeros(self._count, dtype=np.float32)
        for term in sorted(set(terms)):  # a fixed order: float32 sums must not depend on the hash seed
            term_id = self._term_ids.get(term)
            if term_id is None:
                continue
            start, end = self._starts[term_id], self._starts[term_id + 1]
            scores[self._rows[start:end]] += self._weights[start:end]
        return scores

    def alias_scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Passages whose aliases appear as whole words in the query, weighted by rarity."""
        scores = np.zeros(self._count, dtype=np.float32)
        spans = {" ".join(query_tokens[i:i + size]) for i, token in enumerate(query_tokens)
                 for size in self._alias_sizes.get(token, ()) if i + size <= len(query_tokens)}
        for alias in sorted(spans & self._alias_rows.keys()):
            rows, weight = self._alias_rows[alias]
            scores[rows] += weight
        return scores

    def correct(self, tokens: Sequence[str]) -> list[str]:
        """Replace misspelt words by the closest knowledge-base word, if close enough.

        A word is left alone when the knowledge base knows it, or when it is a real word of the
        language (the embedding model's vocabulary), so "movie" never becomes "move".
        """
        from rapidfuzz import fuzz, process  # here: most questions have no word to correct

        corrected = []
        for token in tokens:
            if not self._may_be_a_typo(token):
                corrected.append(token)
                continue
            pool = self._vocabulary_by_initial.get(token[0], [])
            match = process.extractOne(token, pool, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF)
            corrected.append(match[0] if match else token)
        return corrected


    def _may_be_a_typo(self, token: str) -> bool:
        return (
            len(token) >= TYPO_MIN_LENGTH and token.isalpha() and token not in STOPWORDS
            and token not in self.vocabulary and token not in self.dictionary
        )


def expand_terms(tokens: Iterable[str]) -> list[str]:
    """Query words plus the words the knowledge base uses for the same idea ("who runs" -> "head")."""
    expanded: list[str] = []
    for token in tokens:
        expanded.append(token)
        expanded.extend(SYNONYMS.get(token, ()))
    return expanded


def correct_query(question: str, lexical: LexicalIndex) -> str:
    """The question with misspelt knowledge-base words fixed; unchanged when nothing needs fixing."""
    tokens = tokenize(question)
    fixed = lexical.correct(tokens)
    if fixed == tokens:
        return question
    return " ".join(fixed)


@functools.cache
def rrf_shares(weight: float, count: int) -> tuple[float, ...]:
    """Reciprocal rank fusion: what ranks 1 to ``count`` of a ranking weighted ``weight`` add to a row's score."""
    return tuple(weight / (RRF_K + rank) for rank in range(1, count + 1))


def best_first(scores: dict[int, float]) -> list[int]:
    """Rows by score, highest first; equal scores: lower row first."""
    rows = sorted(scores)
    rows.sort(key=scores.__getitem__, reverse=True)  # a stable sort: equal scores keep rows ascending
    return rows


def ranks_of(scores: np.ndarray, limit: int) -> list[int]:
    """Rows with a positive score, best first."""
    positive = np.flatnonzero(scores > 0)
    if positive.size == 0:
        return []
    order = positive[np.argsort(-scores[positive], kind="stable")]
    return order[:limit].tolist()


class Retriever:
    """Ranks passages for a question; holds no per-question state, so it is shared across threads."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        vectors: VectorIndex,
        ids: Sequence[str],
        dictionary: frozenset[str] = frozenset(),
    ) -> None:
        self.passages = [knowledge.passages[pid] for pid in ids]
        self.row_of = {pid: row for row, pid in enumerate(ids)}
        self.vectors = vectors
        self.lexical = LexicalIndex(self.passages, dictionary)

    def search(
        self, query_vector: np.ndarray, query_text: str, limit: int, time: TimeReference | None = None
    ) -> list[Candidate]:
        if not self.passages:
            return []
        pool = min(len(self.passages), max(limit * 4, 40))
        scores, rows = self.vectors.search(query_vector, pool)
        dense_score = {r: s for r, s in zip(rows[0].tolist(), scores[0].tolist(), strict=True) if r >= 0}
        dense_rows = list(dense_score)
        words = tokenize(query_text)
        lexical_rows = ranks_of(self.lexical.bm25(expand_terms(t for t in words if t not in STOPWORDS)), pool)
        alias_rows = ranks_of(self.lexical.alias_scores(words), pool)
        fused: dict[int, float] = {}
        for weight, ranked in ((DENSE_WEIGHT, dense_rows), (BM25_WEIGHT, lexical_rows), (ALIAS_WEIGHT, alias_rows)):
            for row, share in zip(ranked, rrf_shares(weight, pool), strict=False):  # a ranking may be shorter
                fused[row] = fused.get(row, 0.0) + share
        if time is not None:
            for row in list(fused):
                if matches_time(self.passages[row], time):
                    fused[row] += TIME_BONUS
        missing = [row for row in fused if row not in dense_score]
        if missing:
            similarities = self.vectors.vectors[missing] @ query_vector.ravel()
            dense_score.update(zip(missing, similarities.tolist(), strict=True))
        dense_rank = {row: rank for rank, row in enumerate(dense_rows, start=1)}
        lexical_rank = {row: rank for rank, row in enumerate(lexical_rows, start=1)}
        return [
            Candidate(row, self.passages[row], fused[row], dense_score[row], dense_rank.get(row), lexical_rank.get(row))
            for row in best_first(fused)[:limit]
        ]

    def vector_of(self, passage_id: str) -> np.ndarray | None:
        row = self.row_of.get(passage_id)
        return None if row is None else self.vectors.vectors[row]

    def similarity(self, a: Passage, b: Passage) -> float:
        va = self.vectors.vectors[self.row_of[a.id]]
        vb = self.vectors.vectors[self.row_of[b.id]]
        return float(va @ vb)


def retrieve(retriever: Retriever, query: Query, vector: np.ndarray | None, k: int) -> list[Candidate]:
    """Stage 2: the fused candidates for an understood question (none without a question vector)."""
    if vector is None:
        return []
    return retriever.search(vector, query.text, limit=max(k * 3, 15), time=query.time)


def matches_time(passage: Passage, time: TimeReference) -> bool:
    if passage.date.year != time.year:
        return False
    return time.month is None or passage.date.month == time.month
