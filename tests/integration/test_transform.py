"""Transformation URLs end to end: real ffmpeg builds of one small processed asset, checked on the
decoded output; the cache and its catalog rows; `vam transform`; the `vam_transform` DAG; and
`vam serve`'s /t/ routes (202 -> 200, 400s, limits, signing) over HTTP.

One asset (640x360, 3 s, testsrc2 with a white box top-left and a black one bottom-right, a tone)
is processed once for the module (enrichment off); one service serves it without signing, another
with ``require_signed_urls``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from clipfactory import ClipFactory, decode_frame
from vam_service import VAM, Service

import vam
from vam import storage
from vam.media import tools
from vam.media.probe import describe, probe
from vam.storage.file import file_uri_to_path

pytestmark = pytest.mark.integration

KEYS = "k1:" + "s" * 32


def _png(path: Path, colour: str, size: str = "64x32") -> Path:
    tools.run(
        [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error",
         "-f", "lavfi", "-i", f"color=c={colour}:s={size}", "-frames:v", "1", str(path)],
        log_progress=False,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory, catalog_dsn, airflow_db):
    """VAM_* for this module (own data dir, the session catalog, enrichment off)."""
    home = tmp_path_factory.mktemp("transform-home")
    values = {
        "VAM_HOME": str(home),
        "VAM_CATALOG_DSN": catalog_dsn,
        "VAM_ENRICHMENT": "false",
        "VAM_SIGNING_KEYS": KEYS,
        "VAM_TRANSFORM_MAX_SECONDS": "60",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        yield values


@pytest.fixture(scope="module")
def rt(env):
    from vam.runtime import Runtime

    return Runtime.from_env()


@pytest.fixture(scope="module")
def factory(tmp_path_factory) -> ClipFactory:
    return ClipFactory(tmp_path_factory.mktemp("transform-clips"))


@pytest.fixture(scope="module")
def asset(env, rt, factory) -> dict:
    source = factory.make(width=640, height=360, seconds=3.0, markers=True)
    result = vam.process(str(source), rt=rt)
    assert result["status"] == "ready", result["reason"]
    return {"asset_id": result["asset_id"], "source": source}


@pytest.fixture(scope="module")
def red(rt, tmp_path_factory) -> dict:
    from vam.steps.transform import save_overlay

    return save_overlay(rt, "red", _png(tmp_path_factory.mktemp("overlay") / "red.png", "red"))


def build(rt, asset: dict, text: str, ext: str | None = None) -> tuple[dict, Path]:
    from vam.steps.transform import transform

    result = transform(rt, asset["asset_id"], text, ext)
    return result, file_uri_to_path(result["uri"])


def mean(region: np.ndarray) -> np.ndarray:
    return region.reshape(-1, 3).mean(axis=0)


# -- each parameter on the decoded output ----------------------------------------------------------


def test_fill_gravity_picks_the_region(rt, asset):
    west, path = build(rt, asset, "c_fill,w_200,h_200,g_west")
    assert (west["width"], west["height"]) == (200, 200)
    assert west["duration"] == pytest.approx(3.0, abs=0.1)
    frame = decode_frame(path)
    assert frame.shape == (200, 200, 3)
    # 640x360 -> 356x200; the white box (128x72 -> 71x40) stays at the top-left of a west cut
    assert mean(frame[4:34, 4:60]).min() > 220
    east, path = build(rt, asset, "c_fill,w_200,h_200,g_east")
    frame = decode_frame(path)
    assert mean(frame[4:34, 4:60]).min() < 200  # no white box on the east side
    assert mean(frame[-34:-4, -60:-4]).max() < 30  # the black box at the bottom-right
    assert west["uri"] != east["uri"]


def test_crop_cuts_without_scaling(rt, asset):
    made, path = build(rt, asset, "c_crop,w_100,h_60,x_10,y_5")
    assert (made["width"], made["height"]) == (100, 60)
    ref = decode_frame(asset["source"], vf="crop=100:60:10:5")
    assert np.abs(decode_frame(path).astype(int) - ref.astype(int)).mean() < 6


def test_scale_fit_pad(rt, asset):
    made, _ = build(rt, asset, "w_0.5")
    assert (made["width"], made["height"]) == (320, 180)
    made, _ = build(rt, asset, "c_scale,w_100,h_100")
    assert (made["width"], made["height"]) == (100, 100)
    made, _ = build(rt, asset, "c_fit,w_300,h_300")
    assert (made["width"], made["height"]) == (300, 168)
    made, path = build(rt, asset, "c_pad,w_300,h_300,g_north")
    assert (made["width"], made["height"]) == (300, 300)
    frame = decode_frame(path)
    assert mean(frame[180:300]).max() < 20  # the picture at the top, black padding below
    assert mean(frame[0:30, 0:50]).min() > 220  # the white box still top-left


def test_trim_and_chain(rt, asset):
    made, path = build(rt, asset, "so_1,du_1")
    assert made["duration"] == pytest.approx(1.0, abs=0.1)
    ref = decode_frame(asset["source"], 25)  # the frame at 1 s
    assert np.abs(decode_frame(path).astype(int) - ref.astype(int)).mean() < 6
    made, _ = build(rt, asset, "so_0.5/eo_1.5/w_160")  # chained: [0.5, 2.0)
    assert made["duration"] == pytest.approx(1.5, abs=0.1)
    assert (made["width"], made["height"]) == (160, 90)


def test_overlay_pixels(rt, asset, red):
    made, path = build(rt, asset, "w_320/l_red,g_south_east,x_10,y_10")
    assert (made["width"], made["height"]) == (320, 180)
    frame = decode_frame(path).astype(int)
    box = frame[180 - 10 - 32 + 4 : 180 - 10 - 4, 320 - 10 - 64 + 4 : 320 - 10 - 4]
    r, g, b = mean(box)
    assert r > 200
    assert g < 60
    assert b < 60
    assert mean(frame[4:34, 4:60]).min() > 220  # and not over the white box
    half, path = build(rt, asset, "w_320/l_red,g_south_east,x_10,y_10,o_50")
    frame = decode_frame(path).astype(int)
    r, g, b = mean(frame[180 - 10 - 32 + 4 : 180 - 10 - 4, 320 - 10 - 64 + 4 : 320 - 10 - 4])
    assert 60 < g + 60 < r  # red over the picture, half way
    assert half["uri"] != made["uri"]


def test_formats(rt, asset):
    made, path = build(rt, asset, "w_160,du_1", "webm")
    assert describe(path).video["codec_name"] == "vp9"
    assert (made["width"], made["height"]) == (160, 90)
    made, path = build(rt, asset, "w_160,du_1", "gif")
    assert describe(path).video["codec_name"] == "gif"
    made, path = build(rt, asset, "so_1,w_320", "jpg")
    info = describe(path)
    assert info.video["codec_name"] == "mjpeg"
    assert (made["width"], made["height"]) == (320, 180)
    ref = decode_frame(asset["source"], 25, vf="scale=320:180")
    assert np.abs(decode_frame(path).astype(int) - ref.astype(int)).mean() < 8


def test_q_auto_meets_the_vmaf_target(rt, asset):
    made, _ = build(rt, asset, "w_320,du_2,q_auto")
    derived = {d["name"]: d for d in vam.show(asset["asset_id"], rt=rt)["derived"]}
    spec = derived[f"t-{made['digest']}"]["spec"]
    assert spec["quality"]["target_vmaf"] == 93.0
    assert spec["quality"]["vmaf"] >= 93.0
    assert all(p["vmaf"] < 93.0 for p in spec["quality"]["probes"] if p["crf"] > spec["quality"]["crf"])


def test_g_auto_keeps_the_salient_region(rt, factory, tmp_path):
    from vam.media import transform as tm
    from vam.media.saliency import saliency_map

    # a black frame with a white square in its right third
    source = factory.make(
        width=640, height=360, seconds=2.0, audio=False, pattern="color",
        vf="drawbox=x=500:y=140:w=60:h=60:color=white:t=fill",
    )  # fmt: skip
    info = probe(source)
    spec = tm.parse("c_fill,ar_1:1,g_auto")
    plan = tm.plan(spec, info, saliency=lambda s, d: saliency_map(source, info, s, d))
    box = plan.steps[0]["box"]
    assert box["x"] + box["w"] >= 560
    assert box["x"] > 140
    made = tm.build(source, tmp_path / "auto.mp4", plan)
    assert (made["width"], made["height"]) == (360, 360)
    frame = decode_frame(tmp_path / "auto.mp4")
    assert frame.max() > 200  # the square is in the output
    centred = tm.plan(tm.parse("c_fill,ar_1:1"), info)
    assert centred.steps[0]["box"]["x"] == 140  # g_center would have cut it off


# -- cache, catalog, CLI ---------------------------------------------------------------------------


def test_canonical_forms_share_one_object_and_count_hits(rt, asset):
    first, _ = build(rt, asset, "w_240,h_136")
    again, _ = build(rt, asset, "h_136,w_240,c_scale")
    assert again["cached"] is True
    assert again["uri"] == first["uri"]
    assert again["transformation"] == "w_240,h_136/f_mp4"
    swapped, _ = build(rt, asset, "w_136,h_240")
    assert swapped["uri"] != first["uri"]  # 136x240 is another transformation
    with rt.catalog() as cat:
        row = cat.get_transformation(asset["asset_id"], first["digest"])
    assert row["status"] == "ready"
    assert row["hits"] >= 1
    assert row["builds"] == 1
    shown = vam.show(asset["asset_id"], rt=rt)
    names = {d["name"]: d for d in shown["derived"]}
    assert names[f"t-{first['digest']}"]["kind"] == "transformation"
    assert ("derived", first["uri"]) in {(o["kind"], o["uri"]) for o in shown["objects"]}
    assert storage.sha256_object(first["uri"]) == row["sha256"]


def test_cli_transform(env, asset, tmp_path):
    out = tmp_path / "square.gif"
    proc = subprocess.run(
        [VAM, "transform", asset["asset_id"], "c_fill,w_120,h_120/du_1", "--out", str(out), "--json",
         "--sign", "http://example.test"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["format"] == "gif"
    assert result["out"] == str(out)
    assert describe(out).video["width"] == 120
    assert result["url"].startswith("http://example.test/t/s--v1.k1.")
    bad = subprocess.run(
        [VAM, "transform", asset["asset_id"], "w_abc"], capture_output=True, text=True,
        env={**os.environ, **env}, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "w_: 'abc' is not" in bad.stderr


def test_transform_dag(rt, asset):
    from vam.orchestration.runner import load_dag, task_result

    run = load_dag("vam_transform").test(
        run_conf={
            "asset_id": asset["asset_id"],
            "transformation": "c_fill,ar_9:16,du_1",
            "ext": "mp4",
            "owner": "",
        }
    )
    assert run.state == "success"
    result = task_result(run, "build")
    assert (result["width"], result["height"]) == (202, 360)
    assert result["cached"] is False
    assert describe(file_uri_to_path(result["uri"])).video["height"] == 360


def test_build_claims_leases_and_limits(rt, asset):
    aid, lease = asset["asset_id"], 60

    def claim(digest: str, owner: str, max_builds: int = 2) -> str:
        with rt.catalog() as cat:
            got = cat.claim_transformation(
                aid, digest, f"test_{digest}", "mp4", owner=owner, lease_seconds=lease, max_builds=max_builds
            )
        return got["state"]

    assert claim("d1", "a") == "claimed"
    assert claim("d1", "b") == "busy"  # one owner per transformation while its lease lives
    assert claim("d2", "b", max_builds=1) == "full"  # the build limit across processes
    assert claim("d2", "b", max_builds=2) == "claimed"
    with rt.catalog() as cat:
        cat.fail_transformation(aid, "d1", "a", "ToolError: boom")
        assert cat.get_transformation(aid, "d1")["status"] == "failed"
        assert (
            cat.claim_transformation(aid, "d1", "x", "mp4", owner="b", lease_seconds=0, max_builds=5)["state"]
            == "claimed"
        )  # a failed build is taken again
    assert claim("d1", "c") == "claimed"  # b's lease (0 s) ran out: taken over
    with rt.catalog() as cat:
        for digest in ("d1", "d2"):
            cat.forget_transformation(aid, digest)


# -- over HTTP -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(env, asset, tmp_path_factory):
    server = Service(
        tmp_path_factory.mktemp("transform-serve"),
        {**env, "VAM_TRANSFORM_MAX_BUILDS": "1", "VAM_TRANSFORM_MAX_SECONDS": "2.5"},
    )
    yield server
    server.stop()


def fetch_when_ready(url: str, timeout: float = 90.0, **kw) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        resp = httpx.get(url, timeout=30, **kw)
        if resp.status_code != 202:
            return resp
        assert int(resp.headers["retry-after"]) >= 1
        assert resp.headers["cache-control"] == "no-store"
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} still building after {timeout} s")
        time.sleep(0.3)


def test_http_202_then_200(service, asset, rt):
    url = f"{service.url}/t/c_fill,w_180,h_100,g_north_west/so_0.5,du_1/{asset['asset_id']}.mp4"
    first = httpx.get(url, timeout=30)
    assert first.status_code == 202, first.text
    assert first.json()["status"] in ("building", "queued")
    assert first.json()["via"] == "inline"
    ready = fetch_when_ready(url)
    assert ready.status_code == 200
    assert ready.headers["content-type"] == "video/mp4"
    assert ready.headers["vam-transformation"] == "c_fill,g_north_west,w_180,h_100/so_0.5,du_1/f_mp4"
    body = ready.content
    path = Path(rt.work("tests")) / "http.mp4"
    path.write_bytes(body)
    made = describe(path)
    assert (made.video["width"], made.video["height"]) == (180, 100)
    assert float(made.format["duration"]) == pytest.approx(1.0, abs=0.1)
    etag = ready.headers["etag"]
    assert etag.strip('"') == hashlib.sha256(body).hexdigest()[:32]
    assert httpx.get(url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    part = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206
    assert part.content == body[:100]
    # another spelling is the same object, answered at once
    other = httpx.get(
        f"{service.url}/t/h_100,w_180,c_fill,g_north_west/du_1,so_0.5/{asset['asset_id']}.mp4", timeout=30
    )
    assert other.status_code == 200
    assert other.content == body


def test_http_bad_parameters_limits_and_unknowns(service, asset):
    aid = asset["asset_id"]
    cases = [
        ("w_abc", "w"), ("c_stretch,w_10", "c"), ("zz_1", "zz"), ("w_99999,du_1", "w"), ("so_30", "so"),
        ("w_100", "du"), ("l_nothere", "l"), ("f_webm", "f"),
    ]  # fmt: skip
    for text, parameter in cases:
        resp = httpx.get(f"{service.url}/t/{text}/{aid}.mp4", timeout=30)
        assert resp.status_code == 400, (text, resp.text)
        assert resp.json()["error"]["parameter"] == parameter, text
        assert resp.json()["error"]["message"].startswith(f"{parameter}_")
    assert httpx.get(f"{service.url}/t/w_10/{aid}.avi", timeout=30).status_code == 400
    assert httpx.get(f"{service.url}/t/w_10/0000000000000000.mp4", timeout=30).status_code == 404


def test_http_concurrent_build_limit(service, asset):
    aid = asset["asset_id"]
    slow = httpx.get(f"{service.url}/t/w_300,du_2,q_auto/{aid}.mp4", timeout=30)  # a VMAF search: seconds
    assert slow.status_code == 202
    busy = httpx.get(f"{service.url}/t/w_330,du_2/{aid}.mp4", timeout=30)
    assert busy.status_code == 503
    assert busy.json()["error"]["code"] == "too_many_builds"
    assert int(busy.headers["retry-after"]) >= 1
    assert fetch_when_ready(f"{service.url}/t/w_300,du_2,q_auto/{aid}.mp4", timeout=180).status_code == 200
    assert fetch_when_ready(f"{service.url}/t/w_330,du_2/{aid}.mp4").status_code == 200


def test_http_overlay_upload(service, asset, tmp_path):
    png = _png(tmp_path / "blue.png", "blue", "40x40").read_bytes()
    resp = httpx.post(f"{service.url}/overlays/blue", content=png, headers={"Content-Type": "image/png"})
    assert resp.status_code == 201
    assert (resp.json()["width"], resp.json()["height"]) == (40, 40)
    bad = httpx.post(f"{service.url}/overlays/text", content=b"not an image at all")
    assert bad.status_code == 400
    plain = fetch_when_ready(f"{service.url}/t/w_320,du_1/{asset['asset_id']}.mp4")
    assert plain.status_code == 200
    url = f"{service.url}/t/w_320,du_1/l_blue,g_north_east/{asset['asset_id']}.mp4"
    pending = httpx.get(url, timeout=30)
    assert pending.status_code == 202  # never the unwatermarked file while the watermarked one builds
    ready = fetch_when_ready(url)
    assert ready.status_code == 200
    path = tmp_path / "blue.mp4"
    path.write_bytes(ready.content)
    r, g, b = mean(decode_frame(path)[6:34, 320 - 34 : 320 - 6].astype(int))
    assert b > 180
    assert r < 60
    assert g < 60


def test_http_signing_required(env, asset, tmp_path_factory):
    strict = Service(tmp_path_factory.mktemp("transform-strict"), {**env, "VAM_REQUIRE_SIGNED_URLS": "true"})
    try:
        aid = asset["asset_id"]
        unsigned = httpx.get(f"{strict.url}/t/w_200/{aid}.mp4", timeout=30)
        assert unsigned.status_code == 403
        assert unsigned.json()["error"]["code"] == "token_missing"
        signed = httpx.post(
            f"{strict.url}/t/sign", json={"asset_id": aid, "transformation": "h_112,w_200", "ext": "mp4"}
        )
        assert signed.status_code == 200, signed.text
        url = signed.json()["url"]
        assert "/t/s--v1.k1." in url
        assert url.endswith(f"/w_200,h_112/f_mp4/{aid}.mp4")
        assert fetch_when_ready(url).status_code == 200
        token = url.split("/t/s--", 1)[1].split("/", 1)[0]
        other = httpx.get(f"{strict.url}/t/s--{token}/w_400/{aid}.mp4", timeout=30)
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "token_wrong_path"
        tampered = url.replace("/t/s--v1.k1.", "/t/s--v1.k1.9")
        assert httpx.get(tampered, timeout=30).status_code == 403
        # the same transformation spelled otherwise is covered by the same signature
        assert httpx.get(f"{strict.url}/t/s--{token}/h_112,w_200/{aid}.mp4", timeout=30).status_code == 200
    finally:
        strict.stop()
