"""vam.media reads no settings: tools are configured by the edge; one argv prefix for ffmpeg."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vam.media
from vam.errors import VamError
from vam.media import tools

MEDIA_DIR = Path(vam.media.__file__).parent


@pytest.fixture(autouse=True)
def _reset_tools():
    yield
    tools.configure()


def test_media_modules_never_read_settings():
    for path in sorted(MEDIA_DIR.glob("*.py")):
        imported = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported += [f"{node.module}.{alias.name}" for alias in node.names] + [str(node.module)]
        assert not [name for name in imported if name.startswith("vam.settings")], path.name
        assert "load_settings" not in path.read_text(), path.name


def test_configure_and_defaults(monkeypatch, tmp_path):
    default_ffmpeg = tools.ffmpeg_path()
    assert "imageio_ffmpeg" in default_ffmpeg
    tools.configure(ffmpeg="/opt/ffmpeg/bin/ffmpeg", ffprobe="/opt/ffmpeg/bin/ffprobe")
    assert tools.ffmpeg_path() == "/opt/ffmpeg/bin/ffmpeg"
    assert tools.ffprobe_path() == "/opt/ffmpeg/bin/ffprobe"
    tools.configure(ffmpeg="", ffprobe=None)  # back to the defaults
    assert tools.ffmpeg_path() == default_ffmpeg
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VamError, match="ffprobe not found on PATH"):
        tools.ffprobe_path()


def test_ffmpeg_argv():
    tools.configure(ffmpeg="/x/ffmpeg")
    assert tools.ffmpeg_argv() == ["/x/ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-stats", "-y"]
    assert tools.ffmpeg_argv(threads=4, loglevel="warning", overwrite=False, stats=False) == [
        "/x/ffmpeg", "-hide_banner", "-nostdin", "-v", "warning", "-nostats", "-n", "-threads", "4",
    ]  # fmt: skip


def test_every_ffmpeg_command_in_media_starts_with_the_prefix():
    """No module under vam/media builds its own ffmpeg prefix: ffmpeg_path() is called by tools only."""
    for path in sorted(MEDIA_DIR.glob("*.py")):
        if path.name != "tools.py":
            assert "ffmpeg_path(" not in path.read_text(), path.name
