"""The FAISS side of an index: vectors keyed by their chunk's database id.

`IndexIDMap2` over an exact inner-product index (vectors are unit length, so the score
is the cosine). Saves are atomic: write a temporary file, fsync, rename."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    def __init__(self, dimension: int, index=None):
        faiss = _faiss()
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.dirty = False

    @classmethod
    def load(cls, path: Path, dimension: int) -> "VectorIndex":
        faiss = _faiss()
        if not path.exists():
            return cls(dimension)
        index = faiss.read_index(str(path))
        if index.d != dimension:
            from .errors import IndexMismatchError

            raise IndexMismatchError(f"{path} holds {index.d}-dimensional vectors, the embedder makes {dimension}")
        return cls(dimension, index)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> set[int]:
        faiss = _faiss()
        return set(faiss.vector_to_array(self.index.id_map).tolist()) if len(self) else set()

    def add(self, ids: "np.ndarray", vectors: "np.ndarray") -> None:
        import numpy as np

        if len(ids) == 0:
            return
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        self.dirty = True

    def remove(self, ids) -> int:
        import numpy as np

        ids = np.asarray(list(ids), dtype=np.int64)
        if len(ids) == 0:
            return 0
        removed = int(self.index.remove_ids(ids))
        self.dirty = self.dirty or removed > 0
        return removed

    def search(self, query: "np.ndarray", k: int) -> list[tuple[int, float]]:
        import numpy as np

        if len(self) == 0 or k <= 0:
            return []
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def similarity(self, query: "np.ndarray", ids) -> dict[int, float]:
        """Inner product (cosine) of the query with the stored vectors of these ids."""
        import numpy as np

        ids = [int(i) for i in ids]
        if not ids:
            return {}
        stored = np.vstack([self.index.reconstruct(i) for i in ids])
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
