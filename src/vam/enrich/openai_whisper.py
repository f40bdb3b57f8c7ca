"""The openai-whisper speech-to-text backend (``VAM_WHISPER_BACKEND=openai-whisper``).

An optional extra: ``pip install .[openai-whisper]`` (the package brings numba, tiktoken and, on Linux
x86_64, triton for its GPU kernels; it is left out of the default install). faster-whisper stays the
default backend.

``VAM_WHISPER_MODEL`` is an openai-whisper model name (``tiny.en``, ``base``, ``small``, ...;
openai-whisper downloads it from its model host into ``<VAM_HOME>/models/openai-whisper`` the first
time, where it can reach that host) or the path of a checkpoint file (``.pt``, as openai-whisper
saves them: ``{"dims": ..., "model_state_dict": ...}``). Empty: ``tiny.en``. The model runs on the CPU
in float32 with word timestamps (cross-attention alignment, openai-whisper's own).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from vam.enrich.transcript import (
    SAMPLE_RATE,
    Segment,
    SpeechToText,
    Transcript,
    Word,
    _cpu_count,
    _ms,
    _read_wav,
    finished,
)
from vam.errors import VamError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "tiny.en"
_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()


def _import_whisper() -> Any:
    try:
        import whisper
    except ImportError as exc:
        raise VamError(
            "VAM_WHISPER_BACKEND=openai-whisper needs the openai-whisper package: pip install "
            "'.[openai-whisper]' (or unset VAM_WHISPER_BACKEND for the default faster-whisper)"
        ) from exc
    return whisper


def _load(model: str, download_root: str) -> Any:
    key = (model, download_root)
    with _models_lock:
        if key in _models:
            return _models[key]
        whisper = _import_whisper()
        is_file = Path(model).expanduser().is_file()
        if not is_file and model not in whisper.available_models():
            raise VamError(
                f"VAM_WHISPER_MODEL={model!r} is neither an openai-whisper checkpoint file nor a model name "
                f"(one of {', '.join(whisper.available_models())})"
            )
        if not is_file:
            _check_model_host(whisper, model, download_root)
        started = time.monotonic()
        try:
            loaded = whisper.load_model(
                str(Path(model).expanduser()) if is_file else model, device="cpu", download_root=download_root
            )
        except Exception as exc:  # torch.load, a bad state dict, a download: each its own type
            where = (
                "the checkpoint file is not one openai-whisper saved (a dict with dims and model_state_dict)"
                if is_file
                else "openai-whisper downloads named models from its model host: is it reachable? Else set "
                "VAM_WHISPER_MODEL to a checkpoint file"
            )
            raise VamError(f"cannot load the openai-whisper model {model!r} ({exc}); {where}") from exc
        log.info("loaded openai-whisper model %s in %.2f s", model, time.monotonic() - started)
        _models[key] = loaded
        return loaded


def _check_model_host(whisper: Any, model: str, download_root: str, timeout: float = 10.0) -> None:
    """Fail fast (openai-whisper's own download waits without a timeout) when a named model is not in
    ``download_root`` yet and its host does not answer."""
    import urllib.error
    import urllib.request

    url = whisper._MODELS[model]  # the name -> URL table of openai-whisper (no public accessor)
    if (Path(download_root) / Path(url).name).is_file():
        return
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise VamError(
            f"cannot download the openai-whisper model {model!r}: its model host does not answer ({exc}); "
            "set VAM_WHISPER_MODEL to a checkpoint file (.pt) instead"
        ) from exc


class OpenAIWhisper(SpeechToText):
    """openai-whisper on the CPU (float32), with word timestamps.

    ``model``: a model name or a checkpoint path (empty: ``tiny.en``); ``download_root``: where named
    models are cached; ``language`` empty: detect (multilingual models only); ``threads`` 0: one per
    available core.
    """

    name = "openai-whisper"

    def __init__(
        self,
        model: str | None = None,
        *,
        download_root: str | Path,
        language: str = "en",
        threads: int = 0,
        beam_size: int = 5,
    ) -> None:
        self.model = model or DEFAULT_MODEL
        path = Path(self.model).expanduser()
        self.model_name = path.stem if path.suffix == ".pt" or path.is_file() else self.model
        self.download_root = str(download_root)
        self.language = language or None
        self.threads = threads if threads > 0 else _cpu_count()
        self.beam_size = beam_size

    @property
    def model_id(self) -> str:
        return f"{self.name}:{self.model_name}:fp32"

    def load(self) -> Any:
        """The underlying ``whisper.Whisper`` model (loaded on first use, then shared in the process)."""
        return _load(self.model, self.download_root)

    def transcribe(self, audio_path: Path) -> Transcript:
        import torch

        audio = _read_wav(Path(audio_path))
        audio_seconds = _ms(len(audio) / SAMPLE_RATE)
        model = self.load()
        started = time.monotonic()
        segments: list[Segment] = []
        language = self.language or ""
        if len(audio):
            torch.set_num_threads(self.threads)
            with torch.inference_mode():
                result = model.transcribe(
                    audio,
                    language=self.language,
                    beam_size=self.beam_size,
                    word_timestamps=True,
                    condition_on_previous_text=False,  # as the faster-whisper backend: no runaway repeats
                    fp16=False,
                    verbose=None,
                )
            language = result.get("language") or language
            segments = [s for s in (_segment(piece, audio_seconds) for piece in result["segments"]) if s]
        return finished(language, self.model_id, segments, audio_seconds, started)


def _segment(piece: dict[str, Any], audio_seconds: float) -> Segment | None:
    """One of openai-whisper's segments in vam's shape (times clipped to the audio), or None if empty."""
    text = str(piece.get("text", "")).strip()
    if not text:
        return None

    def clip(t: float) -> float:
        return _ms(min(max(float(t), 0.0), audio_seconds))

    words: list[Word] = [
        {
            "start": clip(w["start"]),
            "end": clip(w["end"]),
            "word": str(w["word"]).strip(),
            "probability": round(float(w.get("probability", 0.0)), 3),
        }
        for w in piece.get("words") or ()
        if str(w.get("word", "")).strip()
    ]
    return {"start": clip(piece["start"]), "end": clip(piece["end"]), "text": text, "words": words}
