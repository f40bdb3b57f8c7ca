"""word_error_rate: word-level Levenshtein distance over the reference length."""

from __future__ import annotations

import pytest

from vam.enrich.transcript import word_error_rate


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("the quick brown fox", "the quick brown fox", 0.0),
        ("The quick, brown fox!", "the QUICK brown fox", 0.0),  # case and punctuation ignored
        ("don't stop", "dont stop", 0.0),
        ("well-known fact", "well known fact", 0.0),
        ("the quick brown fox", "the quick brown box", 0.25),  # one substitution
        ("the quick brown fox", "the brown fox", 0.25),  # one deletion
        ("the quick brown fox", "the very quick brown fox", 0.25),  # one insertion
        ("Airflow orchestrates pipelines", "Air florarchist rates pipelines", 1.0),  # 2 subs + 1 ins
        ("a b c d", "", 1.0),
        ("a b", "c d e f", 2.0),  # insertions can push it above 1
        ("", "", 0.0),
        ("", "anything", 1.0),
        ("...", "", 0.0),  # nothing but punctuation is an empty reference
    ],
)
def test_word_error_rate(reference, hypothesis, expected):
    assert word_error_rate(reference, hypothesis) == pytest.approx(expected)


def test_order_matters():
    assert word_error_rate("one two three", "three two one") == pytest.approx(2 / 3)
