"""Generated sample media: a moving test pattern with a tone, made by ffmpeg's lavfi sources."""

from __future__ import annotations

from pathlib import Path

from vam.media import tools


def make_sample(
    out: Path, *, seconds: float = 10, width: int = 1280, height: int = 720, fps: int = 25, audio: bool = True
) -> Path:
    """Write an H.264/AAC MP4 of ``testsrc2`` (plus a 440 Hz sine when ``audio``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = tools.ffmpeg_argv()
    argv += ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
        argv += ["-c:a", "aac", "-b:a", "128k"]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
    argv += ["-movflags", "+faststart", str(out)]
    tools.run(argv)
    return out
