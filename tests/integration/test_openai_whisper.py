"""The openai-whisper backend (``VAM_WHISPER_BACKEND=openai-whisper``, the optional extra).

No openai-whisper checkpoint can be had on this machine (its model host is out of reach and no wheel
ships one), so these tests build a tiny checkpoint at test time in the exact format
``whisper.load_model`` reads (``{"dims", "model_state_dict"}``, saved with torch.save): random weights,
with the decoder set to say one known word. They check the loading (file path, name, errors) and the
plumbing of segments and word timestamps into vam's transcript shape and WebVTT captions; the backend's
accuracy on real speech is untested here. ``make install`` installs openai-whisper (without triton,
see requirements-dev.txt); where it is missing the tests are skipped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vam.enrich import transcript as stt
from vam.errors import VamError

pytestmark = pytest.mark.integration

whisper = pytest.importorskip(
    "whisper", reason="openai-whisper is not installed: pip install '.[openai-whisper]' (make install does)"
)


WORD = " catalog"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A 1-layer English-only Whisper (n_vocab 51864, the .en tokenizer): random weights, except that
    the decoder is set to say one known word per window. Its blocks add nothing to the residual stream,
    so the next token follows from the token and position embeddings alone: position 0 (after SOT)
    gives the timestamp <|0.00|>, position 1 the word's token, position 2 (the word seen) end of text.
    Alignment (word timestamps) runs on the random cross-attention, as it would on real weights."""
    import torch
    from whisper.model import ModelDimensions, Whisper
    from whisper.tokenizer import get_tokenizer

    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
        n_vocab=51864, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=1,
    )  # fmt: skip
    torch.manual_seed(14)
    model = Whisper(dims)
    tokenizer = get_tokenizer(multilingual=False)
    (word,) = tokenizer.encode(WORD)
    scale = 4.0  # after the final LayerNorm a one-hot row of 4 gives a logit of ~32: one token wins
    with torch.no_grad():
        decoder = model.decoder
        for block in decoder.blocks:
            for linear in (block.attn.out, block.cross_attn.out, block.mlp[2]):
                linear.weight.zero_()
                if linear.bias is not None:
                    linear.bias.zero_()
        decoder.token_embedding.weight.zero_()
        decoder.positional_embedding.zero_()
        for dim, (token, position) in enumerate(
            ((tokenizer.timestamp_begin, 0), (word, 1), (tokenizer.eot, 2))
        ):
            decoder.token_embedding.weight[token, dim] = scale
            decoder.positional_embedding[position, dim] = scale
        decoder.positional_embedding[2, 1] = -scale  # cancels the word's own embedding at position 2
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """Three seconds of espeak-ng speech in an MP4 (AAC), as a source would carry it."""
    from vam.media import tools

    out = tmp_path_factory.mktemp("speech")
    wav = out / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), "video assets in the catalog"], check=True)
    mp4 = out / "speech.mp4"
    argv = [*tools.ffmpeg_argv(stats=False), "-i", str(wav), "-c:a", "aac", str(mp4)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return mp4


def test_a_checkpoint_file_loads_and_segments_carry_word_timestamps(checkpoint, speech, tmp_path):
    config = stt.WhisperConfig(
        backend="openai-whisper", model=str(checkpoint), models_dir=str(tmp_path), threads=1
    )
    backend = stt.speech_to_text(config)
    assert backend.model_id == "openai-whisper:tiny-random:fp32"
    model = backend.load()
    assert isinstance(model, whisper.model.Whisper)
    assert model.dims.n_text_layer == 1
    assert not model.is_multilingual

    result = stt.transcribe(speech, whisper=config, work_dir=tmp_path / "work")
    assert result["model"] == "openai-whisper:tiny-random:fp32"
    assert result["language"] == "en"
    assert 1.0 < result["audio_seconds"] < 5.0
    # the model says WORD in each window; openai-whisper moves the next window to the end of the last
    # word, so the segments follow each other through the audio, each with its word's timestamps
    assert result["segments"], "the model produced no segment: the plumbing was not exercised"
    assert {s["text"] for s in result["segments"]} == {WORD.strip()}
    starts = [s["start"] for s in result["segments"]]
    assert starts == sorted(starts)
    words = 0
    for segment in result["segments"]:
        assert 0.0 <= segment["start"] <= segment["end"] <= result["audio_seconds"]
        assert segment["text"] == segment["text"].strip() != ""
        for word in segment["words"]:
            assert set(word) == {"start", "end", "word", "probability"}
            assert 0.0 <= word["start"] <= word["end"] <= result["audio_seconds"]
            assert 0.0 <= word["probability"] <= 1.0
            assert word["word"] == WORD.strip()
            assert segment["start"] <= word["start"] <= word["end"] <= segment["end"]
            words += 1
    assert words > 0
    assert result["text"] == " ".join(s["text"] for s in result["segments"])
    vtt = stt.to_webvtt(result["segments"])  # captions are built from the words' times
    assert vtt.startswith("WEBVTT")
    assert "-->" in vtt
    # loaded once per process
    assert stt.speech_to_text(config).load() is model


def test_loading_errors_say_what_to_do(tmp_path):
    bad = tmp_path / "not-a-checkpoint.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(VamError, match="not one openai-whisper saved"):
        stt.speech_to_text(stt.WhisperConfig(backend="openai-whisper", model=str(bad))).load()
    with pytest.raises(VamError, match="neither an openai-whisper checkpoint file nor a model name"):
        stt.speech_to_text(stt.WhisperConfig(backend="openai-whisper", model="tiny-nonexistent")).load()
    # a named model is downloaded from openai-whisper's model host, out of reach here: a clear error
    with pytest.raises(VamError, match="model host"):
        stt.speech_to_text(
            stt.WhisperConfig(backend="openai-whisper", model="tiny.en", models_dir=str(tmp_path / "m"))
        ).load()
    assert not list((tmp_path / "m").glob("*.pt"))  # nothing half-downloaded left as a model
