"""Encoding profiles: the shipped ones load; bad ones fail with errors naming the file and the key."""

from __future__ import annotations

import inspect
import json
import textwrap

import pytest

from vam.errors import ProfileError, UnknownProfile
from vam.media.profiles import available_profiles, load_profile, profile_from_dict
from vam.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "include" / "encoding_profiles"

GOOD = """\
name: {name}
version: 3
segment_seconds: 4
rungs:
  - name: 360p
    height: 360
    codec: h264
    video_bitrate_kbps: 800
"""


def write(directory, name, text):
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_default_profile_loads():
    profile = load_profile("default", SHIPPED)
    assert profile.key == "default@1"
    assert [(r.name, r.height, r.video_bitrate_kbps) for r in profile.rungs] == [
        ("1080p", 1080, 5000),
        ("720p", 720, 3000),
        ("480p", 480, 1400),
        ("360p", 360, 800),
    ]
    assert {r.codec for r in profile.rungs} == {"h264"}
    assert all(r.crf == 23 and r.preset == "veryfast" for r in profile.rungs)
    assert [r.audio_bitrate_kbps for r in profile.rungs] == [128, 128, 128, 96]
    assert profile.segment_seconds == 4
    assert (profile.audio_codec, profile.audio_channels, profile.audio_sample_rate) == ("aac", 2, 48000)
    assert profile.vmaf_model == "vmaf_v0.6.1"
    assert profile.vmaf_n_subsample == 10
    floors = [r.min_vmaf for r in profile.rungs]
    assert floors == sorted(floors, reverse=True)
    assert all(0 < r.min_ssim < 1 and r.min_psnr > 0 for r in profile.rungs)


def test_profiles_dir_is_required(tmp_path):
    """The media layer reads no settings: the edge passes the directory in."""
    for function in (load_profile, available_profiles):
        param = inspect.signature(function).parameters["profiles_dir"]
        assert param.default is inspect.Parameter.empty
    write(tmp_path, "mine", GOOD.format(name="mine"))
    assert available_profiles(tmp_path) == ["mine"]
    assert load_profile("mine", str(tmp_path)).key == "mine@3"


@pytest.mark.parametrize("name", available_profiles(SHIPPED))
def test_pinned_profile_round_trips(name):
    profile = load_profile(name, SHIPPED)
    data = profile.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-able as it is
    restored = profile_from_dict(json.loads(json.dumps(data)))
    assert restored == profile
    assert profile_from_dict(data) == profile
    assert restored.key == profile.key


def test_pinned_profile_is_the_file_layout(tmp_path):
    """to_dict() is what a profile file holds: written as YAML, it loads back as the same profile."""
    import yaml

    profile = load_profile("multicodec", SHIPPED)
    (tmp_path / "multicodec.yaml").write_text(yaml.safe_dump(profile.to_dict()))
    assert load_profile("multicodec", tmp_path) == profile


def test_pinned_profile_is_validated():
    data = load_profile("default", SHIPPED).to_dict()
    data["rungs"][0]["codec"] = "vp9"
    with pytest.raises(ProfileError, match=r"default@1.*rungs\[0\]\.codec: 'vp9'"):
        profile_from_dict(data)
    del data["version"]
    with pytest.raises(ProfileError, match="version: missing"):
        profile_from_dict(data)
    with pytest.raises(ProfileError, match="must be a mapping"):
        profile_from_dict(["not", "a", "profile"])  # type: ignore[arg-type]


def test_multicodec_profile_loads():
    profile = load_profile("multicodec", SHIPPED)
    assert [r.codec for r in profile.rungs] == ["h264", "hevc", "av1"]
    assert profile.rungs[2].preset == "10"


def test_available_profiles_lists_the_shipped_ones():
    assert {"default", "multicodec"} <= set(available_profiles(SHIPPED))


def test_unknown_profile_lists_available(tmp_path):
    write(tmp_path, "alpha", GOOD.format(name="alpha"))
    write(tmp_path, "beta", GOOD.format(name="beta"))
    with pytest.raises(UnknownProfile, match="'nope'.*alpha, beta"):
        load_profile("nope", tmp_path)
    with pytest.raises(UnknownProfile, match="alpha, beta"):
        load_profile("../alpha", tmp_path)


def test_version_suffix_is_checked(tmp_path):
    write(tmp_path, "alpha", GOOD.format(name="alpha"))
    assert load_profile("alpha@3", tmp_path).version == 3
    with pytest.raises(UnknownProfile, match="version 3.*not 2"):
        load_profile("alpha@2", tmp_path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("name: bad\nversion: 1\nsegment_seconds: 4\n", "rungs: missing"),
        (GOOD.format(name="bad").replace("version: 3\n", ""), "version: missing"),
        (GOOD.format(name="bad").replace("codec: h264", "codec: vp9"), r"rungs\[0\]\.codec: 'vp9'"),
        (GOOD.format(name="bad").replace("    height: 360\n", ""), r"rungs\[0\]\.height: missing"),
        (
            GOOD.format(name="bad").replace("height: 360", "height: tall"),
            r"rungs\[0\]\.height: must be an int",
        ),
        (GOOD.format(name="bad").replace("version: 3", "version: true"), "version: must be an integer"),
        (
            GOOD.format(name="bad") + "    min_ssim: 2\n",
            r"rungs\[0\]\.min_ssim: must be at least 0 and at most 1",
        ),
        (GOOD.format(name="bad") + "    presset: fast\n", r"rungs\[0\]\.presset: unknown key"),
        (GOOD.format(name="bad") + "    preset: fastest\n", r"rungs\[0\]\.preset: 'fastest'"),
        (GOOD.format(name="bad") + "audio: {codec: mp3}\n", "audio.codec: 'mp3'"),
        (GOOD.format(name="bad") + "quality: [1]\n", "quality: must be a mapping"),
        (GOOD.format(name="other"), "name: 'other' must match the file name 'bad'"),
        ("name: bad\nrungs: [\n", "not valid YAML"),
        ("- just\n- a list\n", r"\(top level\): must be a mapping"),
    ],
)
def test_malformed_profile_errors_name_file_and_key(tmp_path, text, key):
    path = write(tmp_path, "bad", text)
    with pytest.raises(ProfileError, match=key) as excinfo:
        load_profile("bad", tmp_path)
    assert str(path) in str(excinfo.value)


def test_duplicate_rung_names_are_rejected(tmp_path):
    text = GOOD.format(name="dup") + "  - {name: 360p, height: 240, codec: h264, video_bitrate_kbps: 400}\n"
    write(tmp_path, "dup", text)
    with pytest.raises(ProfileError, match=r"rungs\[1\]\.name: duplicate"):
        load_profile("dup", tmp_path)


def test_rungs_are_sorted_highest_first(tmp_path):
    text = GOOD.format(name="up") + "  - {name: 720p, height: 720, codec: hevc, video_bitrate_kbps: 2000}\n"
    write(tmp_path, "up", text)
    assert [r.name for r in load_profile("up", tmp_path).rungs] == ["720p", "360p"]
