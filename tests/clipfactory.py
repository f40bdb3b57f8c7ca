"""Generated test media (ffmpeg lavfi sources), cached per test session, and a frame decoder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from vam.media import tools

# A white box in the top-left corner and a black one in the bottom-right, each a fifth of the frame
# (testsrc2 has neither colour in its corners): where they end up tells which way a picture was
# turned or which part of it was cropped.
MARKERS = ",".join(
    f"drawbox=x={x}:y={y}:w=iw/5:h=ih/5:color={colour}:t=fill"
    for x, y, colour in (("0", "0", "white"), ("iw*4/5", "ih*4/5", "black"))
)


def decode_frame(path: Path, index: int = 0, *, vf: str = "", autorotate: bool = True) -> np.ndarray:
    """Frame ``index`` (0-based) as an RGB array ``[height, width, 3]``, turned upright by ffmpeg
    unless ``autorotate`` is False (then as coded); ``vf`` is applied after the frame is picked."""
    chain = f"select=eq(n\\,{int(index)})" + (f",{vf}" if vf else "")
    argv = [*tools.ffmpeg_argv(stats=False), *([] if autorotate else ["-noautorotate"])]
    argv += ["-i", str(Path(path).absolute()), "-map", "0:v:0"]
    argv += ["-vf", chain, "-frames:v", "1", "-c:v", "ppm", "-f", "image2pipe", "pipe:1"]
    data = b"".join(tools.stream(argv, chunk_bytes=1 << 20))
    if not data:
        raise ValueError(f"{path} has no frame {index}")
    magic, width, height, maxval, pixels = data.split(maxsplit=4)
    if magic != b"P6" or maxval != b"255":
        raise ValueError(f"ffmpeg wrote no 8-bit PPM for frame {index} of {path}")
    w, h = int(width), int(height)
    return np.frombuffer(pixels[: w * h * 3], np.uint8).reshape(h, w, 3)


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
        markers: bool = False,
        vf: str = "",
    ) -> Path:
        """An H.264 (+AAC) MP4 of a lavfi pattern; ``rotate`` sets a display rotation (degrees,
        counter-clockwise as ``-display_rotation`` takes it), ``markers`` draws :data:`MARKERS`, ``vf``
        filters the picture last (e.g. ``transpose=cclock``, or ``scale=240:240,setsar=4/3``)."""
        tag = f"{'-m' if markers else ''}{'-vf' + hashlib.sha1(vf.encode()).hexdigest()[:8] if vf else ''}"
        name = f"{pattern}-{width}x{height}-{seconds}s-{fps}fps-{'a' if audio else 'na'}-r{rotate}{tag}.mp4"
        out = self.directory / name
        if out.exists():
            return out
        source = f"{pattern}=size={width}x{height}:rate={fps}"
        source += "".join(f",{f}" for f in (MARKERS if markers else "", vf) if f)
        argv = [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error"]
        argv += ["-f", "lavfi", "-i", source]
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

    def make_phone_portrait(
        self, *, width: int = 240, height: int = 320, seconds: float = 1.0
    ) -> tuple[Path, Path]:
        """A portrait scene as a phone held upright records it, and the scene itself.

        The scene is ``width`` x ``height`` testsrc2 with :data:`MARKERS` (white top-left, black
        bottom-right as a viewer must see them). The phone's landscape sensor stores it turned a
        quarter counter-clockwise (``height`` x ``width`` coded) with a display matrix asking the
        player for a quarter turn clockwise (ffprobe: ``rotation: -90``). Returns (phone clip, scene).
        """
        scene = self.make(width=width, height=height, seconds=seconds, audio=False, markers=True)
        phone = self.make(
            width=width, height=height, seconds=seconds, audio=False, markers=True, vf="transpose=cclock",
            rotate=-90,
        )  # fmt: skip
        return phone, scene

    # -- hostile but legitimate inputs (issue "Robust inputs") ---------------------------------------

    def _ffmpeg_robust(self, argv: list[str], out: Path) -> Path:
        """Run an ffmpeg ``argv`` whose last argument is ``out``, writing a temp file renamed at the end."""
        tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
        tools.run(
            [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error", *argv[:-1], str(tmp)], log_progress=False
        )
        tmp.rename(out)
        return out

    def make_vfr(
        self,
        *,
        rates: tuple[int, ...] = (10, 30, 60),
        width: int = 320,
        height: int = 240,
        audio: bool = True,
    ) -> Path:
        """A variable-frame-rate MP4: 1 s segments of testsrc2 at each of ``rates`` joined with the concat
        demuxer (stream copy). The segments share one video timescale, as a camera's or an editor's would,
        so the timestamps survive the join (100 frames over 3 s for 10, 30, 60 fps)."""
        tag = f"{width}x{height}-{'a' if audio else 'na'}"
        out = self.directory / f"vfr-{'-'.join(map(str, rates))}-{tag}.mp4"
        if out.exists():
            return out
        parts = []
        for rate in rates:
            part = self.directory / f"vfr-part-{rate}fps-{tag}.mp4"
            argv = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={rate}:duration=1"]
            if audio:
                argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"]
                argv += ["-c:a", "aac"]
            argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
            argv += ["-video_track_timescale", "15360", str(part)]
            if not part.exists():
                self._ffmpeg_robust(argv, part)
            parts.append(part)
        listing = out.with_suffix(".txt")
        listing.write_text("".join(f"file '{p.absolute()}'\n" for p in parts))
        return self._ffmpeg_robust(
            ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out)], out
        )

    def make_interlaced(
        self, *, width: int = 320, height: int = 240, seconds: float = 2.0, fps: int = 25
    ) -> Path:
        """Interlaced H.264 (top field first, field-coded: ffprobe ``field_order`` tt) of moving testsrc2:
        each frame woven from two fields 1/(2*fps) s apart, so a progressive encode of it shows combing."""
        out = self.directory / f"interlaced-{width}x{height}-{seconds}s-{fps}i.mp4"
        if out.exists():
            return out
        argv = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={2 * fps}:duration={seconds}"]
        argv += ["-vf", "tinterlace=mode=interleave_top,setfield=tff"]
        argv += ["-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-x264-params", "tff=1"]
        return self._ffmpeg_robust([*argv, "-pix_fmt", "yuv420p", str(out)], out)

    # HDR test card: four vertical bars, white, grey, red, black (each a quarter of the width).
    HDR_BARS = ("white", "gray", "red", "black")

    def make_hdr(
        self, *, transfer: str = "smpte2084", width: int = 320, height: int = 240, seconds: float = 1.0
    ) -> Path:
        """A 10-bit HEVC HDR clip, BT.2020, of :data:`HDR_BARS`: ``transfer`` ``smpte2084`` (PQ, HDR10)
        or ``arib-std-b67`` (HLG). The SDR bars are converted by zscale with SDR white at 1000 nits
        (a bright HDR highlight), grey and red below it, and tagged as HDR."""
        out = self.directory / f"hdr-{transfer}-{width}x{height}-{seconds}s.mp4"
        if out.exists():
            return out
        bars = ",".join(
            f"drawbox=x=iw*{i}/4:y=0:w=iw/4:h=ih:color={colour}:t=fill"
            for i, colour in enumerate(self.HDR_BARS)
        )
        to_hdr = (
            f"zscale=tin=bt709:pin=bt709:min=bt709:rin=tv:t={transfer}:p=bt2020:m=bt2020nc:r=tv:npl=1000,"
            "format=yuv420p10le"
        )
        card = f"color=c=black:s={width}x{height}:r=25:d={seconds},{bars},format=yuv420p,{to_hdr}"
        argv = ["-f", "lavfi", "-i", card]
        argv += ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"]
        argv += ["-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc"]
        return self._ffmpeg_robust([*argv, "-color_range", "tv", "-tag:v", "hvc1", str(out)], out)

    def make_audio_longer(
        self, *, video_seconds: float = 2.0, audio_seconds: float = 7.0, width: int = 320, height: int = 240
    ) -> Path:
        """An MP4 whose AAC audio (a 440 Hz sine) outlasts its H.264 video (testsrc2, 25 fps)."""
        out = self.directory / f"longaudio-{video_seconds}v-{audio_seconds}a-{width}x{height}.mp4"
        if out.exists():
            return out
        argv = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={video_seconds}"]
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={audio_seconds}"]
        argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        argv += ["-c:a", "aac", "-b:a", "96k"]
        return self._ffmpeg_robust([*argv, str(out)], out)
