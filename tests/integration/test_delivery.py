"""Delivery: `vam serve` as an HLS/DASH origin with signed URLs, the assets API, and the player and
upload pages in a real browser (Debian's chromium driven by playwright).

One tiny asset (640x384, 4 s, two shots, spoken English) is processed once for the module with
enrichment on, so it has two renditions, Whisper captions and chapters from the scenes. One server
serves it for every test here."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from vam_service import VAM, Service

from vam.media import tools
from vam.settings import REPO_ROOT

pytestmark = pytest.mark.integration

SPEECH = "Welcome to the river bank. The boats are ready."
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
PLAYED = """(() => {
  const v = document.querySelector("video");
  let seconds = 0;
  for (let i = 0; i < v.played.length; i++) seconds += v.played.end(i) - v.played.start(i);
  const q = v.getVideoPlaybackQuality();
  return {seconds, duration: v.duration, ranges: v.played.length, frames: q.totalVideoFrames,
          dropped: q.droppedVideoFrames};
})()"""


def _speech_clip(work: Path) -> Path:
    """4 s at 640x384 (the ladder gives `source` 640x384 and 360p): testsrc2 then colour bars,
    espeak-ng speech from 0.3 s."""
    wav = work / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), SPEECH], check=True)
    out = work / "talk.mp4"
    size, rate = "640x384", 25
    graph = (
        "[0:v]trim=duration=2,setpts=PTS-STARTPTS[a];[1:v]trim=duration=2,setpts=PTS-STARTPTS[b];"
        "[a][b]concat=n=2:v=1:a=0[v];[2:a]adelay=300:all=1,apad[s]"
    )
    tools.run(
        [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
         "-f", "lavfi", "-i", f"smptebars=size={size}:rate={rate}",
         "-i", str(wav), "-filter_complex", graph, "-map", "[v]", "-map", "[s]", "-t", "4",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)],
        log_progress=False,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory, catalog_dsn, airflow_db):
    """vam settings of this module (own data dir, the session catalog), in os.environ meanwhile."""
    home = tmp_path_factory.mktemp("delivery") / "home"
    values = {"VAM_HOME": str(home), "VAM_CATALOG_DSN": catalog_dsn}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in values.items():
            mp.setenv(k, v)
        mp.delenv("VAM_ENRICHMENT", raising=False)
        yield values


@pytest.fixture(scope="module")
def asset(env, tmp_path_factory) -> dict:
    """The module's asset, processed once; its captions and chapters made by the real transcript and
    scenes steps only (labels and moderation would add a minute and nothing this module looks at)."""
    import vam
    from vam.runtime import Runtime
    from vam.settings import load_settings
    from vam.steps import enrich

    clip = _speech_clip(tmp_path_factory.mktemp("clip"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAM_ENRICHMENT", "false")
        processed = vam.process(str(clip), title="River bank talk")
    assert processed["status"] == "ready", processed.get("reason")
    rt = Runtime(load_settings())
    aid = processed["asset_id"]
    captions = enrich.transcript(rt, aid)["captions_uri"]
    chapters = enrich.scenes(rt, aid)["chapters_uri"]
    with rt.catalog() as cat:
        cat.set_published_tracks(aid, captions, chapters)  # as the publish step does
    result = vam.show(aid, rt=rt)
    assert [r["name"] for r in result["renditions"]] == ["source", "360p"]
    assert result["captions_uri"]
    assert result["chapters_uri"]
    return result


@pytest.fixture(scope="module")
def server(env, asset, tmp_path_factory):
    service = Service(tmp_path_factory.mktemp("serve"), env)
    yield service
    service.stop()


def vam_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VAM, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )


def signed(server: Service, asset_id: str, *extra: str) -> dict:
    proc = vam_cli("url", asset_id, "--json", *extra, env=server.env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def local(uri: str) -> Path:
    from vam import storage

    path = storage.store_for(uri).local_path(uri)
    assert path is not None
    return path


# -- the assets API -------------------------------------------------------------------------------


def test_assets_api_matches_the_cli_and_errors_are_json(server, asset):
    aid = asset["asset_id"]
    listed = httpx.get(server.url + "/assets").json()
    assert aid in [h["asset_id"] for h in listed]

    hits = httpx.get(server.url + "/assets", params={"q": "river bank"}).json()
    cli_hits = json.loads(vam_cli("search", "river bank", "--json", env=server.env).stdout)
    assert hits == cli_hits
    assert hits[0]["asset_id"] == aid, hits
    assert hits[0]["matches"], hits

    shown = httpx.get(f"{server.url}/assets/{aid}").json()
    cli_shown = json.loads(vam_cli("show", aid, "--json", env=server.env).stdout)
    assert shown == cli_shown

    resp = httpx.patch(f"{server.url}/assets/{aid}/tags", json={"assignments": ["tags+=river,boats"]})
    assert resp.status_code == 200, resp.text
    assert sorted(resp.json()["tags"]["tags"]) == ["boats", "river"]
    assert httpx.get(server.url + "/assets", params={"tag": "tags=boats"}).json()[0]["asset_id"] == aid

    bad = httpx.patch(f"{server.url}/assets/{aid}/tags", json={"assignments": ["no assignment"]})
    assert bad.status_code == 400
    assert "key=value" in bad.json()["error"]["message"]
    missing = httpx.get(f"{server.url}/assets/0000000000000000")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    play = httpx.get(f"{server.url}/assets/{aid}/playback", params={"format": "dash", "ttl": 60}).json()
    assert play["url"] == play["dash"]
    assert play["url"].endswith(".mpd")
    assert play["expires"] - time.time() == pytest.approx(60, abs=5)
    openapi = httpx.get(server.url + "/openapi.json").json()
    assert {"/assets", "/assets/{asset_id}", "/assets/{asset_id}/playback"} <= set(openapi["paths"])
    assert httpx.get(server.url + "/docs").status_code == 200


# -- the origin -----------------------------------------------------------------------------------


def test_origin_reads_record_the_last_access(server, asset):
    """The first origin read of the asset in this server writes last_accessed_at (runs before the
    other origin tests: later reads within 5 minutes write nothing)."""
    import psycopg2

    def last_access():
        with psycopg2.connect(server.env["VAM_CATALOG_DSN"]) as conn, conn.cursor() as cur:
            cur.execute("SELECT last_accessed_at FROM assets WHERE asset_id = %s", (asset["asset_id"],))
            return cur.fetchone()[0]

    with psycopg2.connect(server.env["VAM_CATALOG_DSN"]) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE assets SET last_accessed_at = now() - interval '1 hour' WHERE asset_id = %s",
            (asset["asset_id"],),
        )
    before = last_access()
    urls = signed(server, asset["asset_id"])
    assert httpx.get(urls["hls"]).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and last_access() == before:
        time.sleep(0.2)
    after = last_access()
    assert after > before
    assert httpx.get(urls["dash"]).status_code == 200
    time.sleep(1)
    assert last_access() == after  # at most one write every few minutes


def test_signed_manifest_and_segments_with_mime_cache_range_etag_cors(server, asset):
    aid = asset["asset_id"]
    urls = signed(server, aid, "--ttl", "120")
    assert urls["url"].startswith(server.url + "/v/")
    assert urls["url"] == urls["hls"]

    master = httpx.get(urls["hls"], headers={"Origin": "https://player.example"})
    assert master.status_code == 200
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert master.headers["cache-control"] == "public, max-age=10"
    assert master.headers["access-control-allow-origin"] == "*"
    assert "Content-Range" in master.headers["access-control-expose-headers"]
    assert master.content == local(asset["hls"]).read_bytes()

    # relative URIs in the manifests keep the token: follow them down to a segment
    variant = next(line for line in master.text.splitlines() if line and not line.startswith("#"))
    playlist = httpx.get(urls["hls"].rsplit("/", 1)[0] + "/" + variant)
    assert playlist.status_code == 200
    seg_name = next(line for line in playlist.text.splitlines() if line.endswith(".m4s"))
    seg_url = str(playlist.url).rsplit("/", 1)[0] + "/" + seg_name
    seg_path = local(asset["hls"]).parent / variant.rsplit("/", 1)[0] / seg_name
    data = seg_path.read_bytes()

    whole = httpx.get(seg_url)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["content-type"] == "video/iso.segment"
    assert whole.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]

    part = httpx.get(seg_url, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    tail = httpx.get(seg_url, headers={"Range": "bytes=-500"})
    assert tail.status_code == 206
    assert tail.content == data[-500:]
    past = httpx.get(seg_url, headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(data)}"

    cached = httpx.get(seg_url, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert httpx.get(seg_url, headers={"If-None-Match": '"other"'}).status_code == 200
    head = httpx.head(seg_url)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(data)

    preflight = httpx.options(
        seg_url,
        headers={"Origin": "https://player.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "range"},
    )  # fmt: skip
    assert preflight.status_code == 204
    assert "Range" in preflight.headers["access-control-allow-headers"]

    mpd = httpx.get(urls["dash"])
    assert mpd.headers["content-type"] == "application/dash+xml"
    vtt = httpx.get(urls["captions"])
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT")
    assert "river" in vtt.text.lower()
    chapters = httpx.get(urls["chapters"])
    assert chapters.status_code == 200
    assert chapters.text.startswith("WEBVTT")


def test_missing_tampered_expired_or_foreign_tokens_get_403(server, asset):
    from vam.delivery.signing import KeyRing

    aid = asset["asset_id"]
    urls = signed(server, aid)
    token = urls["token"]
    path = urls["hls"].split(f"/v/{token}/", 1)[1]

    def status(tok: str, p: str = path) -> tuple[int, str]:
        resp = httpx.get(f"{server.url}/v/{tok}/{p}")
        return resp.status_code, resp.json()["error"]["code"] if resp.status_code != 200 else ""

    assert status(token) == (200, "")
    parts = token.split(".")
    later = ".".join([parts[0], parts[1], str(int(parts[2]) + 3600), parts[3], parts[4]])
    assert status(later) == (403, "token_bad_signature")
    flipped = parts[4][:-2] + ("AA" if parts[4][-2:] != "AA" else "BB")
    assert status(".".join([*parts[:4], flipped])) == (403, "token_bad_signature")
    assert status("nonsense") == (403, "token_malformed")
    ring = KeyRing("", server.env["VAM_HOME"])  # the keys vam url and vam serve share
    expired, _ = ring.sign(f"{aid}/", -5)
    assert status(expired) == (403, "token_expired")
    other, _ = ring.sign("0000000000000000/", 60)
    assert status(other) == (403, "token_wrong_path")


def test_requiring_signatures_and_key_rotation(asset, env, tmp_path):
    """In process (Starlette's TestClient over the real app): with require_signed_urls the unsigned
    path is refused; after a rotation, URLs signed with the previous key still play."""
    from fastapi.testclient import TestClient

    from vam.api import create_app
    from vam.delivery import signing
    from vam.settings import load_settings

    aid = asset["asset_id"]
    rel = asset["hls"].split(f"/{aid}/", 1)[1].replace("%40", "@")
    open_app = TestClient(create_app(load_settings({**env, "VAM_REQUIRE_SIGNED_URLS": "false"})))
    assert open_app.get(f"/o/{aid}/{rel}").status_code == 200

    settings = load_settings({**env, "VAM_REQUIRE_SIGNED_URLS": "true"})
    with TestClient(create_app(settings)) as client:
        refused = client.get(f"/o/{aid}/{rel}")
        assert refused.status_code == 403
        assert "signed" in refused.json()["error"]["message"]
        ring = signing.KeyRing("", env["VAM_HOME"])
        old_token, _ = ring.sign(f"{aid}/", 60)
        assert client.get(f"/v/{old_token}/{aid}/{rel}").status_code == 200
        kids = signing.rotate(env["VAM_HOME"])
        assert len(kids) == 2
        assert old_token.split(".")[1] == kids[1]
        new_token, _ = signing.KeyRing("", env["VAM_HOME"]).sign(f"{aid}/", 60)
        assert new_token.split(".")[1] == kids[0]
        client.app.state.keyring = signing.KeyRing("", env["VAM_HOME"])
        assert client.get(f"/v/{new_token}/{aid}/{rel}").status_code == 200
        assert client.get(f"/v/{old_token}/{aid}/{rel}").status_code == 200  # still active
        signing.rotate(env["VAM_HOME"])  # the old key drops out after a second rotation
        client.app.state.keyring = signing.KeyRing("", env["VAM_HOME"])
        gone = client.get(f"/v/{old_token}/{aid}/{rel}")
        assert gone.status_code == 403
        assert gone.json()["error"]["code"] == "token_unknown_key"


# -- the pages, in Chromium ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/install_system.sh (make install)")
    from playwright.sync_api import sync_playwright

    args = ["--autoplay-policy=no-user-gesture-required"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


def _page(browser):
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def test_player_plays_hls_to_the_end_with_captions_chapters_and_quality(browser, server, asset):
    ARTIFACTS.mkdir(exist_ok=True)
    urls = signed(server, asset["asset_id"], "--format", "hls")
    page = _page(browser)
    page.goto(urls["watch"])
    page.wait_for_function("window.vamPlayer.levels.length > 0", timeout=20000)
    options = page.eval_on_selector_all("#quality option", "os => os.map(o => o.textContent)")
    assert options[0] == "Auto", options
    assert len(options) == 3, options
    levels = page.evaluate("window.vamPlayer.levels")
    assert sorted(levels) == ["360p", "384p"]
    page.select_option("#captions", "en")
    page.wait_for_function(
        "(() => { const t = window.vamPlayer.captions; return t.mode === 'showing' &&"
        " t.activeCues && t.activeCues.length > 0; })()",
        timeout=20000,
    )
    cue_text = page.evaluate("window.vamPlayer.captions.activeCues[0].text")
    page.screenshot(path=str(ARTIFACTS / "player-hls-captions.png"))
    page.wait_for_function("window.vamPlayer.ended || window.vamPlayer.error", timeout=30000)
    result = page.evaluate(
        "({ended: vamPlayer.ended, error: vamPlayer.error, t: document.getElementById('video').currentTime,"
        " chapters: [...document.querySelectorAll('#chapters li')].map(li => li.textContent)})"
    )
    assert result["error"] is None, result
    assert result["ended"], result
    assert result["t"] == pytest.approx(4.0, abs=0.3)
    assert len(result["chapters"]) == len(asset["chapters"]) >= 1, result["chapters"]  # from the scenes
    assert cue_text.strip(), cue_text
    played = page.evaluate(PLAYED)
    assert played["seconds"] >= 0.9 * played["duration"], played  # played through, no jump to the end
    assert played["frames"] - played["dropped"] >= 20 * played["duration"], played  # frames shown (25 fps)
    page.screenshot(path=str(ARTIFACTS / "player-hls-ended.png"))
    assert page.errors == []
    page.close()


def test_player_plays_dash_to_the_end_and_switches_quality(browser, server, asset):
    urls = signed(server, asset["asset_id"], "--format", "dash")
    page = _page(browser)
    page.goto(urls["watch"])
    page.wait_for_function("window.vamPlayer.levels.length > 0", timeout=20000)
    assert sorted(page.evaluate("window.vamPlayer.levels")) == ["360p", "384p"]
    page.select_option("#quality", "0")
    page.select_option("#captions", "en")
    page.wait_for_function("window.vamPlayer.ended || window.vamPlayer.error", timeout=30000)
    result = page.evaluate(
        "({ended: vamPlayer.ended, error: vamPlayer.error, cues: vamPlayer.captions.cues.length})"
    )
    assert result["error"] is None, result
    assert result["ended"], result
    assert result["cues"] > 0
    played = page.evaluate(PLAYED)
    assert played["seconds"] >= 0.9 * played["duration"], played  # played through, no jump to the end
    assert played["frames"] - played["dropped"] >= 20 * played["duration"], played  # frames shown (25 fps)
    # the player holds the chosen rendition (it takes effect from the next segment it fetches: a
    # 4 s clip is buffered whole before the switch, so the frames shown stay 384p here)
    assert page.evaluate("vamPlayer.engine.getCurrentRepresentationForType('video').height") == 360
    page.screenshot(path=str(ARTIFACTS / "player-dash-ended.png"))
    assert page.errors == []
    page.close()


def test_expired_token_shows_the_players_error(browser, server, asset):
    from vam.delivery.signing import KeyRing

    aid = asset["asset_id"]
    token, _ = KeyRing("", server.env["VAM_HOME"]).sign(f"{aid}/", -1)
    page = _page(browser)
    page.goto(f"{server.url}/watch/{aid}?token={token}&format=hls")
    page.wait_for_function(
        "window.vamPlayer.errors.some(e => e.includes('HTTP 403'))", timeout=20000
    )  # hls.js's fatal error
    text = page.inner_text("#error")
    assert "HTTP 403" in text, text
    assert "manifestLoadError" in text, text
    assert page.evaluate("window.vamPlayer.ended") is False
    page.screenshot(path=str(ARTIFACTS / "player-expired.png"))
    page.close()


def test_upload_page_uploads_resumes_after_reload_and_the_asset_becomes_ready(browser, server, clips):
    import vam

    clip = clips.make(width=320, height=240, seconds=2.0, pattern="testsrc2")
    size = clip.stat().st_size
    page = _page(browser)
    page.goto(f"{server.url}/upload?chunk_mib={size / 6 / 2**20:.4f}")  # six PATCH requests
    # the network fails after the first PATCH: tus-js-client retries, then reports the failure
    patches = {"n": 0}

    def flaky(route):
        if route.request.method == "PATCH":
            patches["n"] += 1
            if patches["n"] > 1:
                route.abort()
                return
        route.continue_()

    page.route("**/files/**", flaky)
    page.set_input_files("#file", str(clip))
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])", timeout=30000)
    sent = float(page.inner_text("#percent").rstrip("%"))
    assert 0 < sent < 100, sent

    page.unroute("**/files/**")
    page.reload()
    page.set_input_files("#file", str(clip))
    page.click("#start")
    page.wait_for_function("window.vamUpload.done || window.vamUpload.error", timeout=30000)
    state = page.evaluate("window.vamUpload")
    assert state["error"] is None, state
    assert state["done"], state
    assert state["resumedFrom"], "the second attempt did not resume the first upload"
    assert state["assetId"]
    assert page.inner_text("#percent") == "100.0%"

    # the ingest DAG would pick the landed file up; run its processing here (enrichment off)
    landed = sorted((Path(server.env["VAM_HOME"]) / "objects" / "landing").rglob(clip.name))
    assert landed
    assert landed[0].stat().st_size == size
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAM_ENRICHMENT", "false")
        result = vam.process(str(landed[0]))
    assert result["status"] == "ready"
    assert result["asset_id"] == state["assetId"]
    page.wait_for_function("window.vamUpload.status === 'ready'", timeout=20000)
    page.wait_for_selector("#watch:not([hidden])", timeout=10000)
    page.screenshot(path=str(ARTIFACTS / "upload-ready.png"))
    page.close()


# -- another store ---------------------------------------------------------------------------------


def test_origin_streams_from_s3_with_ranges_and_the_stores_etag(env, seaweed, tmp_path):
    """Objects of an asset held in S3 (SeaweedFS): the origin reads exactly the requested range
    with one ranged GET, and its ETag is the store's."""
    import hashlib
    import secrets
    import uuid

    from vam.catalog import open_catalog
    from vam.delivery.signing import KeyRing
    from vam.storage.s3 import make_s3_client

    client = make_s3_client(
        seaweed.endpoint_url, access_key=seaweed.access_key, secret_key=seaweed.secret_key
    )
    bucket = f"vam-origin-{uuid.uuid4().hex[:8]}"
    seaweed.ensure_buckets([bucket])
    data = secrets.token_bytes(3 * 2**20 + 123)
    with open_catalog(env["VAM_CATALOG_DSN"], actor="test") as cat:
        aid, _ = cat.register_asset(
            sha256=secrets.token_hex(32), source_uri="s3://x/source.mp4", size_bytes=1
        )
        key = f"{aid}/default@1/hls/720p/seg_00001.m4s"
        client.put_object(Bucket=bucket, Key=key, Body=data)
        cat.record_object(f"s3://{bucket}/{key}", asset_id=aid, kind="segment", size_bytes=len(data))
    service = Service(
        tmp_path,
        {
            **env,
            "VAM_S3_ENDPOINT_URL": seaweed.endpoint_url,
            "AWS_ACCESS_KEY_ID": seaweed.access_key,
            "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        },
    )
    try:
        token, _ = KeyRing("", env["VAM_HOME"]).sign(f"{aid}/", 60)
        url = f"{service.url}/v/{token}/{key}"
        whole = httpx.get(url)
        assert whole.status_code == 200
        assert hashlib.sha256(whole.content).digest() == hashlib.sha256(data).digest()
        assert whole.headers["etag"] == client.head_object(Bucket=bucket, Key=key)["ETag"]
        part = httpx.get(url, headers={"Range": "bytes=2097000-2098999"})
        assert part.status_code == 206
        assert part.content == data[2097000:2099000]
        assert httpx.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
        assert httpx.get(f"{service.url}/v/{token}/{aid}/default@1/hls/720p/nope.m4s").status_code == 404
    finally:
        service.stop()


def test_origin_streams_from_gs_and_az(env, tmp_path):
    """The same origin over fake-gcs-server and Azurite (in process, Starlette's TestClient over the
    real app; the stores read through their ranged readers with 256 KiB requests)."""
    import secrets

    from azure.storage.blob import BlobServiceClient
    from fastapi.testclient import TestClient

    from vam import storage
    from vam.api import create_app
    from vam.catalog import open_catalog
    from vam.delivery.signing import KeyRing
    from vam.devstack.azurite import start_azurite
    from vam.devstack.gcs import start_fake_gcs
    from vam.settings import load_settings
    from vam.storage import configure_store
    from vam.storage.az import AzureStore
    from vam.storage.gs import GCSStore

    small = 256 * 1024
    gcs = start_fake_gcs(log_path=tmp_path / "fake-gcs.log")
    azurite = start_azurite(tmp_path / "azurite")
    try:
        gcs.ensure_buckets(["vam-origin"])
        azurite.ensure_containers(["vam-origin"])
        configure_store("gs", GCSStore(gcs.client(), read_chunk_size=small))
        az_client = BlobServiceClient.from_connection_string(azurite.connection_string)
        configure_store("az", AzureStore(az_client, read_chunk_size=small))
        data = secrets.token_bytes(small * 4 + 77)
        src = tmp_path / "seg.m4s"
        src.write_bytes(data)
        client = TestClient(create_app(load_settings(env)))
        for scheme in ("gs", "az"):
            with open_catalog(env["VAM_CATALOG_DSN"], actor="test") as cat:
                aid, _ = cat.register_asset(
                    sha256=secrets.token_hex(32), source_uri=f"{scheme}://x/src.mp4", size_bytes=1
                )
                key = f"{aid}/default@1/dash/chunk-stream0-00001.m4s"
                uri = f"{scheme}://vam-origin/{key}"
                storage.store_for(uri).put(src, uri)
                cat.record_object(uri, asset_id=aid, kind="segment", size_bytes=len(data))
            token, _ = KeyRing("", env["VAM_HOME"]).sign(f"{aid}/", 60)
            url = f"/v/{token}/{key}"
            whole = client.get(url)
            assert whole.status_code == 200, (scheme, whole.text)
            assert whole.content == data
            start = small * 2 - 10  # across two of the store's ranged reads
            part = client.get(url, headers={"Range": f"bytes={start}-{start + small}"})
            assert part.status_code == 206
            assert part.content == data[start : start + small + 1]
            assert client.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
    finally:
        configure_store("gs", None)
        configure_store("az", None)
        gcs.stop()
        azurite.stop()
