"""Nudity moderation of keyframes with NudeNet (its bundled 320n.onnx detector, onnxruntime on CPU).

NudeNet detects 18 classes of body parts, exposed or covered, and faces. A keyframe's ``score`` is
the highest detection score among :data:`EXPLICIT_CLASSES`, the exposed body parts that make a
video need review; exposed feet, armpits, bellies and male chests, covered parts and faces are
reported in ``detections`` but do not count. NudeNet drops detections under 0.2, so a keyframe with
nothing explicit scores 0.0.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from vam.errors import VamError

log = logging.getLogger(__name__)

MODEL_NAME = "nudenet-320n"
EXPLICIT_CLASSES = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)

_lock = threading.Lock()
_detector: Any = None


def _load_detector() -> Any:
    """NudeNet's detector with the model file shipped in its wheel; created once per process."""
    global _detector
    with _lock:
        if _detector is None:
            try:
                from nudenet import NudeDetector
            except ImportError:
                raise VamError("NudeNet is not installed: run `make install` (installs nudenet)") from None
            started = time.monotonic()
            _detector = NudeDetector()  # no model_path: the bundled 320n.onnx, nothing is downloaded
            log.info("loaded %s in %.2f s", MODEL_NAME, time.monotonic() - started)
        return _detector


def moderate(images: list[Path]) -> list[dict]:
    """Per image: ``{"score", "detections": [{"class", "score", "box"}]}``.

    ``score`` is the highest score of an :data:`EXPLICIT_CLASSES` detection (0.0 when there is
    none); ``box`` is ``[x, y, width, height]`` in pixels of the image.
    """
    if not images:
        return []
    import cv2

    detector = _load_detector()
    results = []
    started = time.monotonic()
    for image in images:
        pixels = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if pixels is None:
            raise VamError(f"cannot read image {image}: missing, empty or not an image")
        detections = [
            {"class": d["class"], "score": round(float(d["score"]), 4), "box": [int(v) for v in d["box"]]}
            for d in detector.detect(pixels)
        ]
        detections.sort(key=lambda d: -d["score"])
        score = max((d["score"] for d in detections if d["class"] in EXPLICIT_CLASSES), default=0.0)
        results.append({"score": score, "detections": detections})
    log.info("moderated %d images in %.2f s", len(images), time.monotonic() - started)
    return results


def flag(per_image: list[dict], threshold: float) -> dict:
    """``{"flagged", "max_score", "threshold"}``: flagged when any image's score reaches ``threshold``.

    ``threshold`` (0 to 1) is the caller's, usually the ``moderation_threshold`` setting. No images:
    not flagged.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"the moderation threshold must be between 0 and 1, got {threshold}")
    max_score = max((float(item["score"]) for item in per_image), default=0.0)
    return {"flagged": max_score >= threshold, "max_score": round(max_score, 4), "threshold": threshold}
