"""Similar cases (相似案例推荐): the k most similar earlier cases, for a case or a new report.

Text similarity is the cosine of TF-IDF vectors (characters 1-2 for Chinese, words 1-2 for
English, hashed into a fixed space so cases can be added without refitting); class, place and
recency add small boosts, so among equally worded cases the same class in the same community
from last month comes first.

Scale (1 M stored cases, k = 10, ≤ 50 ms): an inverted index (the term × case matrix in CSC
form) with two classic prunings —
- each stored case keeps only its ``doc_terms`` heaviest terms (static index pruning);
- a query looks up only its ``query_terms`` heaviest terms, skipping terms found in more than
  ``max_df`` of the cases (they rank nothing and have the longest posting lists);
then the best ``candidates`` are rescored exactly and filtered (earlier than the query, inside
the caller's scope). No I/O: the storage side gives texts and metadata and attaches outcomes.

Shared between processes: ``arrays()`` gives the built index as plain arrays, which the storage
side writes once; ``from_arrays`` takes them back — memory-mapped read-only files there, so every
server process reads the same pages instead of holding its own ~1 GiB at 1 M cases. Such an
index is frozen: cases added later go to a small in-process tail, scored by brute force.

Publishing again without refitting (``merged``): the cases stored since are weighed with the
same vectoriser (hashing space, language, document frequencies) and appended; a row's weights
depend only on its own text and those frequencies, so the result answers exactly as a full build
with that vectoriser (``build(cases, like=...)``). The frequencies drift as cases accumulate:
the storage side refits from scratch when the cases added since the fit grow large.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from gridcore.intelligence.errors import NotFitted
from gridcore.intelligence.features import Language, detect_language


@dataclass(frozen=True, slots=True)
class StoredCase:
    case_id: int
    text: str
    category: str | None = None
    place: str | None = None  # grid or community code: used for the boost and for scoping
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SimilarWeights:
    category: float = 0.1
    place: float = 0.05
    recency: float = 0.05
    recency_days: float = 365.0


@dataclass(frozen=True, slots=True)
class SimilarCase:
    case_id: int
    score: float
    text_similarity: float
    same_category: bool
    same_place: bool
    days_before: float | None


class SimilarIndex:
    """Sparse inverted index over stored cases (相似案例推荐)."""

    def __init__(self, language: Language | None = None, *, n_features: int = 2 ** 20,
                 doc_terms: int = 64, query_terms: int = 24, max_df: float = 0.05,
                 candidates: int = 400, max_chars: int = 400,
                 weights: SimilarWeights = SimilarWeights()) -> None:
        self.language = language
        self.n_features = n_features
        self.doc_terms = doc_terms
        self.query_terms = query_terms
        self.max_df = max_df
        self.candidates = candidates
        self.max_chars = max_chars
        self.weights = weights
        self._hv: HashingVectorizer | None = None
        self._idf: NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._df: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._rows: sparse.csr_matrix | None = None
        self._cols: sparse.csc_matrix | None = None
        self._pending: list[sparse.csr_matrix] = []
        self.ids: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._cat: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._place: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._at: NDArray[np.float64] = np.zeros(0)
        self._codes: dict[str, int] = {}
        # from_arrays: the rows/cols above are another's read-only pages; additions go here
        self._frozen = False
        self._tail: sparse.csr_matrix | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def _code(self, value: str | None) -> int:
        if value is None:
            return -1
        return self._codes.setdefault(value, len(self._codes))

    def _counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        if self._hv is None:
            raise NotFitted("the similar-case index has no vectoriser yet")
        x: sparse.csr_matrix = self._hv.transform([t[: self.max_chars] for t in texts])
        x.data = np.log1p(x.data).astype(np.float32)
        return x

    def _weigh(self, counts: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
        """TF-IDF, then each row keeps its ``keep`` heaviest terms, then unit length."""
        x = counts.multiply(self._idf[None, :]).tocsr().astype(np.float32)
        indptr, data = x.indptr, x.data
        mask = np.ones(len(data), dtype=bool)
        for r in np.nonzero(np.diff(indptr) > keep)[0]:
            a, b = indptr[r], indptr[r + 1]
            cut = np.argpartition(-data[a:b], keep)[keep:]
            mask[a + cut] = False
        x.data = np.where(mask, data, 0).astype(np.float32)
        x.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / norms) @ x, dtype=np.float32)

    def vectoriser(self, language: Language) -> HashingVectorizer:
        """Set (and return) the hashing vectoriser of this index for ``language``."""
        self.language = language
        self._hv = HashingVectorizer(
            analyzer="char" if language == "zh" else "word", ngram_range=(1, 2),
            n_features=self.n_features, alternate_sign=False, norm=None, dtype=np.float32)
        return self._hv

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """log(1 + term counts) of texts in the hashed space (before IDF)."""
        if self._hv is None:
            self.vectoriser(self.language or detect_language(texts[:2000]))
        return self._counts(texts)

    def set_document_frequencies(self, df: NDArray[np.int64], n_docs: int) -> None:
        self._df = df.astype(np.int64)
        self._idf = (np.log((1 + n_docs) / (1 + self._df)) + 1).astype(np.float32)

    def append_counts(self, counts: sparse.csr_matrix, ids: Sequence[int],
                      categories: Sequence[str | None], places: Sequence[str | None],
                      ats: Sequence[datetime | None]) -> None:
        """Bulk load: add already counted cases (used by ``build``, ``add`` and benchmarks).
        Call ``finish`` once after the last batch."""
        rows = self._weigh(counts, self.doc_terms)
        self._pending.append(rows)
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self._cat = np.concatenate([self._cat, np.array([self._code(c) for c in categories],
                                                        dtype=np.int32)])
        self._place = np.concatenate([self._place, np.array([self._code(p) for p in places],
                                                            dtype=np.int32)])
        self._at = np.concatenate([self._at, np.array(
            [a.timestamp() if a else np.nan for a in ats], dtype=np.float64)])

    def finish(self) -> None:
        """Make the appended batches searchable (one CSR for rescoring, one CSC for lookup)."""
        if self._frozen:  # the shared base stays as it is: the batches join the tail
            tail = ([self._tail] if self._tail is not None else []) + self._pending
            self._tail = sparse.vstack(tail, format="csr") if len(tail) > 1 else tail[0]
            self._pending = []
            return
        parts = ([self._rows] if self._rows is not None else []) + self._pending
        self._rows = sparse.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
        self._pending = []
        self._cols = self._rows.tocsc()

    ARRAYS = ("rows_data", "rows_indices", "rows_indptr", "cols_data", "cols_indices",
              "cols_indptr", "ids", "cat", "place", "at", "df", "idf")

    def arrays(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """The built index as plain arrays (names in ``ARRAYS``) and a small JSON-able
        description, for ``from_arrays`` in other processes."""
        if self._rows is None or self._cols is None or self._frozen or self._pending:
            raise NotFitted("only a built, finished index that owns its arrays can be shared")
        r, c = self._rows, self._cols
        arrays = {"rows_data": r.data, "rows_indices": r.indices, "rows_indptr": r.indptr,
                  "cols_data": c.data, "cols_indices": c.indices, "cols_indptr": c.indptr,
                  "ids": self.ids, "cat": self._cat, "place": self._place, "at": self._at,
                  "df": self._df, "idf": self._idf}
        meta = {"language": self.language, "n_features": self.n_features,
                "doc_terms": self.doc_terms, "query_terms": self.query_terms,
                "max_df": self.max_df, "candidates": self.candidates,
                "max_chars": self.max_chars, "codes": self._codes, "n": len(self.ids),
                "last_id": int(self.ids.max()) if len(self.ids) else 0}
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]], meta: Mapping[str, Any],
                    weights: SimilarWeights = SimilarWeights()) -> SimilarIndex:
        """An index over ``arrays`` as given — memory-mapped files stay mapped, nothing is
        copied — frozen: ``add`` puts new cases in an in-process tail."""
        idx = cls(meta["language"], n_features=meta["n_features"],
                  doc_terms=meta["doc_terms"], query_terms=meta["query_terms"],
                  max_df=meta["max_df"], candidates=meta["candidates"],
                  max_chars=meta["max_chars"], weights=weights)
        idx.vectoriser(meta["language"])
        n, f = int(meta["n"]), int(meta["n_features"])
        idx._rows = sparse.csr_matrix((arrays["rows_data"], arrays["rows_indices"],
                                       arrays["rows_indptr"]), shape=(n, f), copy=False)
        idx._cols = sparse.csc_matrix((arrays["cols_data"], arrays["cols_indices"],
                                       arrays["cols_indptr"]), shape=(n, f), copy=False)
        idx.ids, idx._cat, idx._place = arrays["ids"], arrays["cat"], arrays["place"]
        idx._at, idx._df, idx._idf = arrays["at"], arrays["df"], arrays["idf"]
        idx._codes = dict(meta["codes"])
        idx._frozen = True
        return idx

    VOCABULARY = ("language", "n_features", "doc_terms", "max_chars")

    def vocabulary(self) -> dict[str, Any]:
        """What decides a stored row's weights besides the document frequencies: indexes with
        the same vocabulary (and frequencies) weigh a text alike."""
        return {"language": self.language, "n_features": self.n_features,
                "doc_terms": self.doc_terms, "max_chars": self.max_chars}

    def build(self, cases: Sequence[StoredCase], like: SimilarIndex | None = None
              ) -> SimilarIndex:
        """Index ``cases``: document frequencies are learnt from them, or (``like``) taken
        with the language from that index — the same vectoriser, no refit."""
        self._rows, self._cols, self._pending, self._tail = None, None, [], None
        self._frozen = False
        self.ids = np.zeros(0, dtype=np.int64)
        self._cat = np.zeros(0, dtype=np.int32)
        self._place = np.zeros(0, dtype=np.int32)
        self._at = np.zeros(0)
        if like is not None:
            if like.language is None or like._idf.size != self.n_features:
                raise NotFitted("the index to weigh like has no vectoriser of this size")
            self.vectoriser(like.language)
            self._df, self._idf = like._df, like._idf
        counts = self.counts([c.text for c in cases])
        if like is None:
            self.set_document_frequencies(
                np.bincount(counts.indices, minlength=self.n_features), len(cases))
        self.append_counts(counts, [c.case_id for c in cases], [c.category for c in cases],
                           [c.place for c in cases], [c.at for c in cases])
        self.finish()
        return self

    def merged(self, cases: Sequence[StoredCase]) -> SimilarIndex:
        """A new index owning its arrays (so it can be shared): every case of this one (a
        shared base and its tail too) followed by ``cases``, weighed with this index's
        vectoriser — the answers of ``build(all cases, like=self)`` without weighing the old
        cases again."""
        if self._rows is None:
            raise NotFitted("the similar-case index is empty")
        out = SimilarIndex(self.language, n_features=self.n_features,
                           doc_terms=self.doc_terms, query_terms=self.query_terms,
                           max_df=self.max_df, candidates=self.candidates,
                           max_chars=self.max_chars, weights=self.weights)
        out.vectoriser(self.language or "zh")
        out._df, out._idf = self._df, self._idf
        out._codes = dict(self._codes)
        out._pending = [self._tail] if self._tail is not None else []
        out.ids, out._cat = np.array(self.ids), np.array(self._cat)
        out._place, out._at = np.array(self._place), np.array(self._at)
        if cases:
            out.append_counts(out.counts([c.text for c in cases]), [c.case_id for c in cases],
                              [c.category for c in cases], [c.place for c in cases],
                              [c.at for c in cases])
        if not out._pending:
            out._rows, out._cols = sparse.csr_matrix(self._rows), sparse.csc_matrix(self._cols)
            return out
        added = sparse.vstack(out._pending, format="csr")
        out._pending = []
        out._rows = sparse.vstack([self._rows, added], format="csr")
        assert self._cols is not None
        out._cols = _stack_postings(self._cols, added.tocsc(), self._rows.shape[0])
        return out

    def add(self, cases: Sequence[StoredCase]) -> None:
        """Append cases (document frequencies stay those of ``build``; rebuild now and then)."""
        if self._rows is None:
            self.build(cases)
            return
        self.append_counts(self.counts([c.text for c in cases]), [c.case_id for c in cases],
                           [c.category for c in cases], [c.place for c in cases],
                           [c.at for c in cases])
        self.finish()

    def query(self, text: str, *, k: int = 10, category: str | None = None,
              place: str | None = None, before: datetime | None = None,
              exclude: Collection[int] = (), scope: Collection[str] | None = None,
              ) -> list[SimilarCase]:
        """The ``k`` most similar stored cases, earlier than ``before`` when given, inside
        ``scope`` (place codes the asker may read) when given."""
        if self._rows is None or self._cols is None:
            raise NotFitted("the similar-case index is empty")
        q = self._weigh(self._counts([text]), 10 ** 9)  # the query keeps all its terms
        if q.nnz == 0:
            return []
        found = self._search(q, k, self.max_df, self.query_terms, category, place, before,
                             exclude, scope)
        if len(found) < k:  # too few: look up every term of the query, common ones too
            found = self._search(q, k, 1.0, q.nnz, category, place, before, exclude, scope)
        return found

    def _search(self, q: sparse.csr_matrix, k: int, max_df: float, query_terms: int,
                category: str | None,
                place: str | None, before: datetime | None, exclude: Collection[int],
                scope: Collection[str] | None) -> list[SimilarCase]:
        assert self._rows is not None and self._cols is not None
        n = len(self.ids)
        terms, weights = q.indices, q.data
        usable = self._df[terms] <= max(max_df * n, 1)
        if not usable.any():
            usable = self._df[terms] <= np.min(self._df[terms])
        t, w = terms[usable], weights[usable]
        top = np.argsort(-w)[:query_terms]
        t, w = t[top], w[top]
        cols = self._cols
        starts, ends = cols.indptr[t], cols.indptr[t + 1]
        rows = np.concatenate([cols.indices[a:b] for a, b in zip(starts, ends, strict=True)])
        vals = np.concatenate([cols.data[a:b] * wi
                               for a, b, wi in zip(starts, ends, w, strict=True)])
        if len(rows) == 0 and self._tail is None:
            return []
        n_base = self._rows.shape[0]
        acc = np.bincount(rows.astype(np.int64), weights=vals,
                          minlength=n_base)  # O(postings + n), no sort
        if self._tail is not None:  # the few cases added since a shared base: every one
            acc = np.concatenate([acc, (self._tail @ q.T).toarray().ravel()])
        uniq = np.flatnonzero(acc)
        partial = acc[uniq]
        keep = np.ones(len(uniq), dtype=bool)
        if before is not None:
            keep &= self._at[uniq] < before.timestamp()
        if scope is not None:
            allowed = np.array([self._codes[s] for s in scope if s in self._codes], dtype=np.int32)
            keep &= np.isin(self._place[uniq], allowed)
        if exclude:
            keep &= ~np.isin(self.ids[uniq], np.fromiter(exclude, dtype=np.int64))
        uniq, partial = uniq[keep], partial[keep]
        if len(uniq) == 0:
            return []
        m = min(self.candidates, len(uniq))
        cand = uniq[np.argpartition(-partial, m - 1)[:m]]
        return self._rank(cand, self._cosine(cand, q), k, category, place, before)

    def _cosine(self, cand: NDArray[np.int64], q: sparse.csr_matrix) -> NDArray[np.float64]:
        """Exact cosines of candidate rows (of the base, or of the tail past its end)."""
        assert self._rows is not None
        n_base = self._rows.shape[0]
        out = np.zeros(len(cand))
        base = cand < n_base
        if base.any():
            out[base] = (self._rows[cand[base]] @ q.T).toarray().ravel()
        if self._tail is not None and (~base).any():
            out[~base] = (self._tail[cand[~base] - n_base] @ q.T).toarray().ravel()
        return out

    def _rank(self, cand: NDArray[np.int64], cos: NDArray[np.float64], k: int,
              category: str | None, place: str | None,
              before: datetime | None) -> list[SimilarCase]:
        wt = self.weights
        same_cat = (self._cat[cand] == self._codes.get(category, -2)) if category else \
            np.zeros(len(cand), dtype=bool)
        same_place = (self._place[cand] == self._codes.get(place, -2)) if place else \
            np.zeros(len(cand), dtype=bool)
        days = None
        score = cos + wt.category * same_cat + wt.place * same_place
        if before is not None:
            days = (before.timestamp() - self._at[cand]) / 86400.0
            score = score + wt.recency * np.exp(-np.nan_to_num(days, nan=1e9)
                                                / wt.recency_days)
        order = np.argsort(-score)[:k]
        return [SimilarCase(int(self.ids[cand[i]]), float(score[i]), float(cos[i]),
                            bool(same_cat[i]), bool(same_place[i]),
                            None if days is None else float(days[i])) for i in order]


def _stack_postings(base: sparse.csc_matrix, added: sparse.csc_matrix, offset: int
                    ) -> sparse.csc_matrix:
    """The term → case postings of ``base`` with ``added``'s rows below it (row ``offset`` on),
    merged column by column: making the CSC of every row again costs a sort of all postings,
    this only moves each one once (the added cases' rows all come after the base's, so every
    column stays sorted)."""
    ca, cb = np.diff(base.indptr), np.diff(added.indptr)
    indptr = np.zeros(len(ca) + 1, dtype=np.int64)
    np.cumsum(ca + cb, out=indptr[1:])
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    index_type = np.int32 if offset + added.shape[0] < 2 ** 31 else np.int64
    indices = np.empty(int(indptr[-1]), dtype=index_type)
    at = np.arange(base.nnz, dtype=np.int64)
    at += np.repeat(indptr[:-1] - base.indptr[:-1], ca)
    data[at], indices[at] = base.data, base.indices
    at = np.arange(added.nnz, dtype=np.int64)
    at += np.repeat(indptr[:-1] + ca - added.indptr[:-1], cb)
    data[at], indices[at] = added.data, added.indices.astype(index_type) + offset
    return sparse.csc_matrix((data, indices, indptr),
                             shape=(offset + added.shape[0], base.shape[1]))
