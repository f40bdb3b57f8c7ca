"""Generated test media (ffmpeg lavfi sources), cached per test session."""

from __future__ import annotations

from pathlib import Path

from vam.media import tools


class ClipFactory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def make(
        self,
        *,
        width: int = 320,
        height: int = 240,
        seconds: float = 2.0,
        fps: int = 25,
        audio: bool = True,
        pattern: str = "testsrc2",
        rotate: int = 0,
    ) -> Path:
        """An H.264 (+AAC) MP4 of a lavfi pattern; ``rotate`` sets a display rotation (degrees)."""
        name = f"{pattern}-{width}x{height}-{seconds}s-{fps}fps-{'a' if audio else 'na'}-r{rotate}.mp4"
        out = self.directory / name
        if out.exists():
            return out
        argv = [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error"]
        argv += ["-f", "lavfi", "-i", f"{pattern}=size={width}x{height}:rate={fps}"]
        if audio:
            argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
            argv += ["-c:a", "aac", "-b:a", "96k"]
        argv += [
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "20",
            "-pix_fmt",
            "yuv420p",
        ]
        tmp = out.with_suffix(".tmp.mp4")
        argv += ["-movflags", "+faststart", str(tmp)]
        tools.run(argv, log_progress=False)
        if rotate:
            rotated = out.with_suffix(".rot.mp4")
            tools.run(
                [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error", "-display_rotation:v:0", str(rotate),
                 "-i", str(tmp), "-c", "copy", "-movflags", "+faststart", str(rotated)],
                log_progress=False,
            )  # fmt: skip
            tmp.unlink()
            tmp = rotated
        tmp.rename(out)
        return out
