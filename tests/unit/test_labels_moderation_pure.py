"""Label aggregation and the moderation flag: pure functions over results, no model is loaded."""

from __future__ import annotations

import pytest

from vam.enrich import labels, moderation


def test_aggregate_takes_the_best_score_and_lists_scenes():
    per_image = [
        [{"label": "dog", "score": 0.5}, {"label": "cat", "score": 0.2}],
        [{"label": "cat", "score": 0.6}, {"label": "dog", "score": 0.1}],
        [{"label": "car", "score": 0.2}, {"label": "car", "score": 0.3}],  # a name twice in one image
    ]
    assert labels.aggregate(per_image) == [
        {"label": "cat", "score": 0.6, "scenes": [0, 1]},
        {"label": "dog", "score": 0.5, "scenes": [0, 1]},
        {"label": "car", "score": 0.3, "scenes": [2]},
    ]
    assert labels.aggregate(per_image, top_k=1) == [{"label": "cat", "score": 0.6, "scenes": [0, 1]}]
    assert labels.aggregate([]) == []


def test_flag_thresholds():
    per_image = [{"score": 0.0, "detections": []}, {"score": 0.61, "detections": []}, {"score": 0.3}]
    assert moderation.flag(per_image, 0.6) == {"flagged": True, "max_score": 0.61, "threshold": 0.6}
    assert moderation.flag(per_image, 0.61)["flagged"] is True  # reaching the threshold flags
    assert moderation.flag(per_image, 0.62) == {"flagged": False, "max_score": 0.61, "threshold": 0.62}
    assert moderation.flag([], 0.6) == {"flagged": False, "max_score": 0.0, "threshold": 0.6}
    assert moderation.flag([{"score": 0.0}], 0.0)["flagged"] is True
    with pytest.raises(ValueError, match="between 0 and 1"):
        moderation.flag(per_image, 1.5)


def test_flag_takes_the_threshold_from_the_caller(monkeypatch):
    monkeypatch.setenv("VAM_MODERATION_THRESHOLD", "0.25")  # the setting is the caller's business
    assert moderation.flag([{"score": 0.3}], 0.6)["flagged"] is False
    with pytest.raises(TypeError):
        moderation.flag([{"score": 0.3}])  # type: ignore[call-arg]


def test_explicit_classes_are_exposed_body_parts_nudenet_knows():
    from nudenet import nudenet as nudenet_module  # the package only: its detector is not created

    known = set(nudenet_module.__labels)  # the detector's class list
    assert known >= moderation.EXPLICIT_CLASSES
    assert all(c.endswith("_EXPOSED") for c in moderation.EXPLICIT_CLASSES)
    assert {"FEET_EXPOSED", "ARMPITS_EXPOSED", "BELLY_EXPOSED", "MALE_BREAST_EXPOSED"}.isdisjoint(
        moderation.EXPLICIT_CLASSES
    )
