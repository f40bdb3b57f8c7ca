"""Visual labels (EfficientNet-Lite0) and moderation (NudeNet) on real photos shipped with scikit-learn.

scikit-learn is pinned in requirements-dev.txt for its sample images only (vam's code does not use it).
The pure tests (aggregation, the moderation flag) are in tests/unit/test_labels_moderation_pure.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sklearn.datasets

from vam.enrich import labels, moderation
from vam.errors import VamError

SKLEARN_IMAGES = Path(sklearn.datasets.__file__).parent / "images"
FLOWER = SKLEARN_IMAGES / "flower.jpg"  # a pink flower, close up
CHINA = SKLEARN_IMAGES / "china.jpg"  # a Chinese temple among trees

# ImageNet classes a close-up of a flower plausibly gets (the flower is not in ImageNet as such)
FLOWER_LIKE = {"daisy", "bee", "ant", "sea anemone", "mushroom", "pot", "vase", "hip", "cardoon", "honeycomb"}
BUILDING_LIKE = {"palace", "bell tower", "monastery", "castle", "church", "pagoda", "boathouse", "lakeshore"}


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    if not (FLOWER.is_file() and CHINA.is_file()):
        pytest.fail(f"scikit-learn's sample images are not in {SKLEARN_IMAGES} (requirements-dev.txt)")
    return [FLOWER, CHINA]


@pytest.mark.integration
def test_network_loads_the_bundled_weights_strictly():
    net = labels._model()
    assert not net.training
    assert len(labels.class_names()) == 1000
    assert labels.class_names()[985] == "daisy"


@pytest.mark.integration
def test_classify_real_photos(photos):
    flower, china = labels.classify(photos, top_k=5)
    assert len(flower) == len(china) == 5
    assert flower[0]["label"] == "daisy"
    assert flower[0]["score"] > 0.25
    assert len(FLOWER_LIKE & {x["label"] for x in flower}) >= 3
    assert china[0]["label"] in BUILDING_LIKE
    assert len(BUILDING_LIKE & {x["label"] for x in china}) >= 3
    for ranked in (flower, china):
        scores = [x["score"] for x in ranked]
        assert scores == sorted(scores, reverse=True)
        assert 0 < sum(scores) <= 1.0001


@pytest.mark.integration
def test_classify_edge_cases(photos, tmp_path):
    assert labels.classify([]) == []
    assert len(labels.classify(photos[:1], top_k=1)[0]) == 1
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(VamError, match="cannot read image"):
        labels.classify([broken])
    with pytest.raises(ValueError, match="top_k"):
        labels.classify(photos, top_k=0)


@pytest.mark.integration
def test_aggregate_classified_keyframes(photos):
    per_image = labels.classify([FLOWER, CHINA, FLOWER], top_k=5)
    asset = labels.aggregate(per_image, top_k=3)
    assert len(asset) == 3
    assert asset[0] == {"label": "daisy", "score": per_image[0][0]["score"], "scenes": [0, 2]}
    assert asset[1]["label"] == per_image[1][0]["label"]
    assert asset[1]["scenes"] == [1]


@pytest.mark.integration
def test_moderation_of_benign_photos(photos):
    per_image = moderation.moderate(photos)
    assert len(per_image) == 2
    for result in per_image:
        assert result["score"] < 0.2
        for detection in result["detections"]:
            assert detection["class"] not in moderation.EXPLICIT_CLASSES
            assert len(detection["box"]) == 4
    verdict = moderation.flag(per_image, 0.6)
    assert verdict["flagged"] is False
    assert verdict["max_score"] < 0.2
    assert moderation.moderate([]) == []


@pytest.mark.integration
def test_moderation_rejects_an_unreadable_image(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"")
    with pytest.raises(VamError, match="cannot read image"):
        moderation.moderate([broken])
