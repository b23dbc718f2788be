"""The FAISS side of an index: vectors keyed by their chunk's database id.

Vectors are unit length, so inner product is the cosine. The index type follows the
size of the collection (FAISS wiki, "Guidelines to choose an index"):

- below `ivf_min` vectors, exact search: `IndexIDMap2` over `IndexFlatIP`;
- from `ivf_min` on, an inverted file `IVF<nlist>,Flat` with nlist about 4 x sqrt(n)
  (a power of two), trained by k-means on at most 64 x nlist of the vectors, searching
  `nprobe` lists (by default nlist / 8: on 100k and 1M vectors shaped like MiniLM's,
  fewer lists missed too many neighbours, see bench/bench_index.py); a hash-table direct map keeps ids arbitrary and lets vectors be
  removed and reconstructed.

`adapt()` switches type (or retrains the inverted file when the collection has grown or
shrunk fourfold) as vectors come and go; the ids and the vectors are the same in every
type. Saves are atomic: write a temporary file, fsync, rename."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings import Settings

if TYPE_CHECKING:
    import numpy as np


def _faiss():
    import faiss

    return faiss


FLAT, IVF = "flat", "ivf"
# the defaults are Settings' (bench/bench_index.py: exact search gets slow past 200,000 vectors on
# a small CPU; nprobe 0 is nlist / 8)
IVF_MIN_VECTORS: int = Settings.ivf_min_vectors
NPROBE: int = Settings.nprobe


def plan(n: int, ivf_min: int = IVF_MIN_VECTORS) -> tuple[str, int]:
    """The index type for n vectors: (FLAT, 0) or (IVF, nlist)."""
    if n < max(ivf_min, 1):
        return FLAT, 0
    nlist = 2 ** round(math.log2(4 * math.sqrt(n)))
    return IVF, min(nlist, 2 ** int(math.log2(n)))  # never more lists than vectors


class FaissIndex:
    def __init__(self, dimension: int, index=None, nprobe: int = NPROBE):
        faiss = _faiss()
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.nprobe = nprobe
        self.dirty = False
        self._known: set[int] | None = None  # the ids, kept once a filtered search has needed them

    @classmethod
    def load(cls, path: Path, dimension: int, nprobe: int = NPROBE) -> "FaissIndex":
        faiss = _faiss()
        if not path.exists():
            return cls(dimension, nprobe=nprobe)
        index = faiss.read_index(str(path))
        if index.d != dimension:
            from ..errors import IndexMismatchError

            raise IndexMismatchError(f"{path} holds {index.d}-dimensional vectors, the embedder makes {dimension}")
        return cls(dimension, index, nprobe)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def kind(self) -> str:
        return IVF if isinstance(self.index, _faiss().IndexIVF) else FLAT

    @property
    def nlist(self) -> int:
        return int(self.index.nlist) if self.kind == IVF else 0

    @property
    def factory(self) -> str:
        """The index type in FAISS's factory notation."""
        return f"IVF{self.nlist},Flat" if self.kind == IVF else "IDMap2,Flat"

    def describe(self) -> str:
        return f"{self.factory} (nprobe {self.probes})" if self.kind == IVF else self.factory

    @property
    def probes(self) -> int:
        """Inverted lists searched per query (IVF only)."""
        return self.nprobe or max(1, self.nlist // 8)

    def ids(self) -> set[int]:
        return set(self._known) if self._known is not None else set(self._ids().tolist())

    def _id_set(self) -> set[int]:
        if self._known is None:
            self._known = set(self._ids().tolist())
        return self._known

    def _ids(self) -> "np.ndarray":
        import numpy as np

        faiss = _faiss()
        if not len(self):
            return np.zeros(0, dtype=np.int64)
        if self.kind == FLAT:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(lists.nlist) if lists.list_size(i)]
        return np.concatenate(parts).astype(np.int64)

    def vectors(self, ids: "np.ndarray | Sequence[int]") -> "np.ndarray":
        """The stored vectors of these ids, in their order."""
        import numpy as np

        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self.index.reconstruct_batch(ids), dtype=np.float32)

    # --- the type follows the size ---------------------------------------------------

    def adapt(self, ivf_min: int = IVF_MIN_VECTORS) -> bool:
        """Rebuild as the type `plan` gives for the current size, when that differs enough
        from the current one: flat -> IVF at ivf_min, IVF -> flat below ivf_min / 2, and a
        new IVF when nlist should grow or shrink fourfold. True when it rebuilt."""
        n = len(self)
        kind, nlist = plan(n, ivf_min)
        if self.kind == FLAT and kind == IVF:
            self.rebuild(IVF, nlist)
        elif self.kind == IVF and n < ivf_min / 2:
            self.rebuild(FLAT)
        elif self.kind == IVF and kind == IVF and not (self.nlist / 4 < nlist < self.nlist * 4):
            self.rebuild(IVF, nlist)
        else:
            return False
        return True

    def rebuild(self, kind: str, nlist: int = 0, seed: int = 1234) -> None:
        """The same ids and vectors in an index of another type (or a retrained IVF)."""
        import numpy as np

        faiss = _faiss()
        ids = self._ids()
        vectors = self.vectors(ids)
        if kind == FLAT:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        elif kind == IVF:
            nlist = nlist or plan(max(len(ids), 1), 1)[1]
            if len(ids) < nlist:
                from ..errors import ConfigError

                raise ConfigError(f"an inverted file of {nlist} lists needs at least {nlist} vectors, there are {len(ids)}")
            quantizer = faiss.IndexFlatIP(self.dimension)
            index = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            index.own_fields = True
            quantizer.this.disown()
            rng = np.random.default_rng(seed)
            sample = vectors if len(vectors) <= 64 * nlist else vectors[rng.choice(len(vectors), 64 * nlist, replace=False)]
            index.cp.seed = seed
            index.cp.min_points_per_centroid = 1  # small collections (forced by reindex): no warning on stderr
            index.train(np.ascontiguousarray(sample))
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vectors), ids)
        self.index = index
        self.dirty = True

    def add(self, ids: "np.ndarray", vectors: "np.ndarray") -> None:
        import numpy as np

        if len(ids) == 0:
            return
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        if self._known is not None:
            self._known.update(np.asarray(ids, dtype=np.int64).tolist())
        self.dirty = True

    def remove(self, ids) -> int:
        import numpy as np

        ids = np.asarray(list(ids), dtype=np.int64)
        if len(ids) == 0:
            return 0
        removed = int(self.index.remove_ids(ids))
        if self._known is not None:
            self._known.difference_update(ids.tolist())
        self.dirty = self.dirty or removed > 0
        return removed

    def search(self, query: "np.ndarray", k: int, allowed: "Sequence[int] | None" = None) -> list[tuple[int, float]]:
        """The k nearest (id, cosine), best first; with `allowed`, among those ids only
        (scored exactly, whatever the index type)."""
        import numpy as np

        if len(self) == 0 or k <= 0:
            return []
        if allowed is not None:
            # rows committed by a writer whose vectors are not saved yet are skipped (the id set
            # is kept: listing a million ids per question took 0.5 s, bench/bench_pgvector.py)
            known = self._id_set()
            ids = np.fromiter(sorted(i for i in allowed if i in known), dtype=np.int64)
            if len(ids) == 0:
                return []
            scores = self.vectors(ids) @ np.asarray(query, dtype=np.float32).reshape(-1)
            best = np.argsort(-scores, kind="stable")[:k]
            return [(int(ids[i]), float(scores[i])) for i in best]
        if self.kind == IVF:
            self.index.nprobe = self.probes
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def similarity(self, query: "np.ndarray", ids) -> dict[int, float]:
        """Inner product (cosine) of the query with the stored vectors of these ids."""
        import numpy as np

        ids = [int(i) for i in ids]
        if not ids:
            return {}
        stored = self.vectors(np.asarray(ids, dtype=np.int64))
        return dict(zip(ids, (stored @ np.asarray(query, dtype=np.float32)).tolist()))

    def save(self, path: Path) -> None:
        faiss = _faiss()
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        self.dirty = False


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
