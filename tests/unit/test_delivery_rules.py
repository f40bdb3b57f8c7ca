"""Playback tokens (vam.delivery.signing) and the origin's HTTP rules (vam.delivery.http)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from vam.delivery import http, signing
from vam.delivery.signing import Key, KeyRing, TokenError, make_token, verify_token

KEY = Key("k1", b"0123456789abcdef0123")
OTHER = Key("k2", b"fedcba9876543210fedc")


def reason(keys, token, path, now=None) -> str:
    with pytest.raises(TokenError) as info:
        verify_token(keys, token, path, now=now)
    return info.value.reason


def test_a_token_covers_every_path_under_its_prefix_until_it_expires():
    token = make_token(KEY, "abc/", 2_000_000_000)
    grant = verify_token([KEY], token, "abc/default@1/hls/360p/seg_00001.m4s", now=1_900_000_000)
    assert (grant.kid, grant.expires, grant.prefix) == ("k1", 2_000_000_000, "abc/")
    assert reason([KEY], token, "abd/x.m4s", now=1_900_000_000) == "wrong_path"
    assert reason([KEY], token, "abc/../abd/x.m4s", now=1_900_000_000) == "wrong_path"
    assert reason([KEY], token, "abc/x.m4s", now=2_000_000_001) == "expired"


def test_tampered_missing_and_unknown_key_tokens_are_refused():
    token = make_token(KEY, "abc/", 2_000_000_000)
    v, kid, exp, prefix, sig = token.split(".")
    assert (
        reason([KEY], ".".join([v, kid, str(int(exp) + 1), prefix, sig]), "abc/x", now=0) == "bad_signature"
    )
    wider = signing._b64e(b"")  # an empty prefix would cover every asset
    assert reason([KEY], ".".join([v, kid, exp, wider, sig]), "abc/x", now=0) == "bad_signature"
    assert reason([OTHER], token, "abc/x", now=0) == "unknown_key"
    assert reason([KEY], None, "abc/x") == "missing"
    assert reason([KEY], "v1.k1.nope", "abc/x") == "malformed"
    assert reason([KEY], "v1.k1.12.@@@.@@@", "abc/x") == "malformed"


def test_configured_keys_first_signs_all_verify():
    ring = KeyRing("new:" + "n" * 20 + ", old:" + "o" * 20, "/nonexistent")
    token, expires = ring.sign("a/", 60)
    assert token.split(".")[1] == "new"
    assert expires == pytest.approx(time.time() + 60, abs=2)
    old = make_token(Key("old", b"o" * 20), "a/", int(time.time()) + 60)
    assert ring.verify(old, "a/x.m4s").kid == "old"
    with pytest.raises(signing.SigningError, match="kid:secret"):
        KeyRing("short:abc", "/nonexistent")


def test_generated_keys_are_written_once_and_shared(tmp_path):
    rings: list[KeyRing] = []
    threads = [threading.Thread(target=lambda: rings.append(KeyRing("", tmp_path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.keys()[0].secret for r in rings}) == 1  # every process agrees on the first writer
    path = signing.keys_path(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["signing.json"]  # no temp files left
    token, _ = rings[0].sign("a/", 60)
    kids = signing.rotate(tmp_path)
    assert len(kids) == 2
    assert len(json.loads(path.read_text())["keys"]) == 2
    fresh = KeyRing("", tmp_path)
    assert fresh.verify(token, "a/b").kid == kids[1]  # signed before the rotation: still good
    assert fresh.sign("a/", 60)[0].split(".")[1] == kids[0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=5-4", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=abc", None),
    ],
)
def test_range_parsing(header, expected):
    got = http.parse_range(header, 1000)
    assert (None if got is None else (got.start, got.end)) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=-0", "bytes=2000-3000"])
def test_ranges_past_the_end_are_not_satisfiable(header):
    with pytest.raises(http.RangeNotSatisfiable):
        http.parse_range(header, 1000)


def test_media_types_cache_lifetimes_and_etags():
    assert http.media_type("a/master.m3u8") == "application/vnd.apple.mpegurl"
    assert http.media_type("a/manifest.mpd") == "application/dash+xml"
    assert http.media_type("a/seg_00001.m4s") == "video/iso.segment"
    assert http.media_type("a/captions.vtt").startswith("text/vtt")
    assert http.media_type("a/scene_0001.jpg") == "image/jpeg"
    assert http.cache_control("a/master.m3u8") == "public, max-age=10"
    assert "immutable" in http.cache_control("a/seg_00001.m4s")
    assert http.make_etag(sha256="ab" * 32, store_etag="x", size=1, modified=1.0) == '"' + "ab" * 16 + '"'
    assert http.make_etag(sha256=None, store_etag='"s3etag"', size=1, modified=1.0) == '"s3etag"'
    one = http.make_etag(sha256=None, store_etag=None, size=10, modified=1.0)
    assert one != http.make_etag(sha256=None, store_etag=None, size=10, modified=2.0)
    assert http.etag_matches(f'"x", {one}', one)
    assert http.etag_matches(f"W/{one}", one)
    assert http.etag_matches("*", one)
    assert not http.etag_matches('"other"', one)
    assert not http.etag_matches(None, one)
