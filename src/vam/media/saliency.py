"""``g_auto``: where the important part of a picture is, and the crop window that keeps most of it.

The measure is **spectral residual saliency** (Hou & Zhang, CVPR 2007), the same algorithm as
OpenCV's ``StaticSaliencySpectralResidual`` in opencv-contrib: a frame is shrunk to
:data:`GRID_WIDTH` pixels wide, grey; the log amplitude spectrum of its FFT minus its local (3x3)
average is the "residual" the natural-image statistics do not predict; transformed back with the
original phase, squared and blurred it lights up what stands out (objects, faces, text, edges of a
subject on a plain background) and stays dark on repetitive texture and flat areas.
:func:`saliency_map` averages it over :data:`SAMPLES` frames spread over the part of the video
being transformed, so a subject that moves is weighted by where it spends its time.

It is written here in numpy instead of importing opencv-contrib-python-headless: that wheel ships the
same ``cv2`` module as opencv-python-headless, which NudeNet (moderation) already pulls in, and two
distributions owning one module break each other on upgrade or uninstall.

:func:`best_window` slides a crop window over the frame (through the affine map from source
coordinates to the current step's coordinates) and keeps the position with the most saliency
inside, ties broken towards the saliency's centre of mass.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vam.media import tools
from vam.media.types import MediaInfo

log = logging.getLogger(__name__)

GRID_WIDTH = 64
SAMPLES = 5
BLUR_SIGMA = 2.5  # grid cells
AMPLITUDE_FLOOR = 0.1  # x the mean amplitude, added before the log
_SEARCH_STEPS = 48


def _blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable convolution with reflected edges."""
    pad = len(kernel) // 2
    out = np.pad(image, ((pad, pad), (0, 0)), mode="reflect")
    out = np.apply_along_axis(lambda col: np.convolve(col, kernel, mode="valid"), 0, out)
    out = np.pad(out, ((0, 0), (pad, pad)), mode="reflect")
    return np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), 1, out)


def _gaussian(sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def spectral_residual(gray: np.ndarray) -> np.ndarray:
    """The spectral residual saliency of a grey image (2-D array), same shape, scaled to [0, 1]."""
    image = np.asarray(gray, dtype=np.float64)
    if image.size == 0 or float(image.std()) < 1e-6:  # a flat frame: nothing stands out
        return np.zeros_like(image)
    spectrum = np.fft.fft2(image)
    amplitude = np.abs(spectrum)
    # A floor under the amplitude: a flat synthetic background has exact spectral zeros, whose
    # logs (-20) would otherwise be the whole "residual".
    log_amplitude = np.log(amplitude + AMPLITUDE_FLOOR * (amplitude.mean() or 1.0))
    phase = np.angle(spectrum)
    residual = log_amplitude - _blur(log_amplitude, np.full(3, 1.0 / 3.0))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    saliency = _blur(saliency, _gaussian(BLUR_SIGMA))
    span = saliency.max() - saliency.min()
    return (saliency - saliency.min()) / span if span > 0 else np.zeros_like(saliency)


def sample_frames(
    source: Path, info: MediaInfo, start: float, duration: float, *, samples: int = SAMPLES
) -> list[np.ndarray]:
    """``samples`` grey frames of the upright display picture, :data:`GRID_WIDTH` wide, spread over
    ``[start, start + duration)``."""
    gw = GRID_WIDTH
    gh = max(2, round(gw * info.display_height / info.display_width))
    rate = samples / max(duration, 1e-3)
    argv = tools.ffmpeg_argv(stats=False)
    argv += ["-ss", f"{start:.6f}"] if start > 0 else []
    argv += ["-t", f"{duration:.6f}", "-i", str(Path(source).absolute()), "-map", "0:v:0"]
    argv += ["-vf", f"fps={rate:.6f},scale={gw}:{gh}:flags=area,format=gray"]
    argv += ["-frames:v", str(samples), "-f", "rawvideo", "pipe:1"]
    data = b"".join(tools.stream(argv, chunk_bytes=1 << 20))
    size = gw * gh
    return [
        np.frombuffer(data[i * size : (i + 1) * size], np.uint8).reshape(gh, gw)
        for i in range(len(data) // size)
    ]


def saliency_map(source: Path, info: MediaInfo, start: float, duration: float) -> np.ndarray:
    """The mean spectral residual saliency of frames sampled over the part of ``source`` being
    transformed; a grid covering the upright display frame (``GRID_WIDTH`` cells wide)."""
    frames = sample_frames(source, info, start, duration)
    if not frames:
        log.warning("no frames sampled from %s for g_auto: the cut is centred", source)
        return np.zeros((2, 2))
    return np.mean([spectral_residual(f) for f in frames], axis=0)


def _integral(sal: np.ndarray) -> np.ndarray:
    return np.pad(sal.cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def best_window(
    sal: np.ndarray | None,
    affine: tuple[float, float, float, float],
    frame_w: int,
    frame_h: int,
    win_w: int,
    win_h: int,
    display: tuple[float, float] | None = None,
) -> tuple[int, int]:
    """The top-left corner of the ``win_w`` x ``win_h`` window inside a ``frame_w`` x ``frame_h``
    picture holding the most saliency. ``sal`` is a grid over the source's display frame;
    ``affine`` = (ax, bx, ay, by) maps source display pixels to the picture (``cur = a*src + b``);
    ``display`` is the source display size (default: the grid spans ``frame / a`` pixels)."""
    free_x, free_y = max(frame_w - win_w, 0), max(frame_h - win_h, 0)
    centre = (free_x // 2, free_y // 2)
    if sal is None or not np.any(sal) or (free_x == 0 and free_y == 0):
        return centre
    ax, bx, ay, by = affine
    gh, gw = sal.shape
    dw, dh = display if display else ((frame_w - bx) / ax, (frame_h - by) / ay)
    table = _integral(sal)
    total_all = float(table[-1, -1]) or 1.0
    # ties (the salient part fits in several windows) go to the window centred nearest the
    # saliency's centre of mass, in the picture's coordinates
    rows, cols = np.indices(sal.shape)
    mass_x = ax * float((sal * (cols + 0.5)).sum() / total_all * dw / gw) + bx
    mass_y = ay * float((sal * (rows + 0.5)).sum() / total_all * dh / gh) + by

    def cells(p0: float, p1: float, a: float, b: float, extent: float, n: int) -> tuple[int, int]:
        s0, s1 = (p0 - b) / a, (p1 - b) / a  # source pixels
        c0 = int(np.clip(round(s0 / extent * n), 0, n))
        c1 = int(np.clip(round(s1 / extent * n), 0, n))
        return c0, max(c1, c0)

    xs = sorted({round(free_x * i / _SEARCH_STEPS) for i in range(_SEARCH_STEPS + 1)})
    ys = sorted({round(free_y * i / _SEARCH_STEPS) for i in range(_SEARCH_STEPS + 1)})
    best, best_key = centre, (-1.0, 0.0)
    for y in ys:
        r0, r1 = cells(y, y + win_h, ay, by, dh, gh)
        for x in xs:
            c0, c1 = cells(x, x + win_w, ax, bx, dw, gw)
            total = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
            off_centre = abs(x + win_w / 2 - mass_x) + abs(y + win_h / 2 - mass_y)
            key = (round(float(total) / total_all, 3), -off_centre)
            if key > best_key:
                best, best_key = (x, y), key
    return best
