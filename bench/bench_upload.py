"""Upload benchmark: tus upload throughput to SeaweedFS against one plain S3 multipart upload of the
same file, and the service's peak RSS during a large upload.

Run as ``.venv/bin/python bench/bench_upload.py [--size-mib 1024] [--chunk-mib 8] [--rss-size-mib 2048]``.

- A SeaweedFS server (``weed mini``, vam's devstack) on 127.0.0.1 with a fresh bucket.
- Baseline: one S3 multipart upload of the file from this process with boto3, sequential parts of
  ``--chunk-mib`` (create, upload_part per chunk read from the file, complete).
- tus: ``vam serve`` in a subprocess with ``upload_uri`` and ``landing_uri`` in that bucket, and a
  tuspy Uploader in this process sending the same file in chunks of ``--chunk-mib``, without and
  with ``Upload-Checksum`` (sha1). The time runs until the answer to the final PATCH, which
  includes completing the multipart upload at the landing key and the SHA-256 (asset id).
- RSS: the server process's resident set size sampled every 50 ms during an upload of
  ``--rss-size-mib`` (the peak is printed; idle RSS after start-up too).

Then ``vam upload --parallel N`` (tus concatenation: N partial uploads at once, then a final
upload; the process start-up is counted) for each ``--parallel`` N, against the best baseline.

The three uploads are interleaved ``--reps`` times (default 3); the best time of each and the
median of the per-round ratios are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

MIB = 1024 * 1024


def make_file(path: Path, size_mib: int) -> None:
    with path.open("wb") as f:
        for i in range(0, size_mib, 8):
            f.write(os.urandom(min(8, size_mib - i) * MIB))


def baseline(client, bucket: str, path: Path, chunk: int) -> float:
    key = f"baseline/{secrets.token_hex(4)}"
    t0 = time.perf_counter()
    mp = client.create_multipart_upload(Bucket=bucket, Key=key)
    parts = []
    with path.open("rb") as f:
        n = 1
        while data := f.read(chunk):
            resp = client.upload_part(
                Bucket=bucket, Key=key, UploadId=mp["UploadId"], PartNumber=n, Body=data
            )
            parts.append({"PartNumber": n, "ETag": resp["ETag"]})
            n += 1
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=mp["UploadId"], MultipartUpload={"Parts": parts}
    )
    seconds = time.perf_counter() - t0
    client.delete_object(Bucket=bucket, Key=key)
    return seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop_flag = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            rss = self.proc.memory_info().rss
            self.peak = max(self.peak, rss)
            time.sleep(0.05)


def tus_upload(url: str, path: Path, chunk: int, checksum: bool) -> tuple[float, dict]:
    from tusclient import client as tus_client

    uploader = tus_client.TusClient(url + "/files/").uploader(
        str(path), chunk_size=chunk, metadata={"filename": path.name}, upload_checksum=checksum
    )
    t0 = time.perf_counter()
    uploader.upload()
    return time.perf_counter() - t0, uploader.request.response_headers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--chunk-mib", type=int, default=8)
    ap.add_argument("--rss-size-mib", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--parallel", type=int, nargs="*", default=[2, 4], help="vam upload --parallel N runs")
    args = ap.parse_args()

    from vam.devstack import start_seaweedfs

    work = Path(tempfile.mkdtemp(prefix="vam-bench-upload-"))
    access, secret = "bench" + secrets.token_hex(3), secrets.token_hex(16)
    weed = start_seaweedfs(work / "weed", access_key=access, secret_key=secret)
    weed.access_key, weed.secret_key = access, secret
    bucket = "vam-bench-" + secrets.token_hex(3)
    weed.ensure_buckets([bucket])
    client = weed.client()
    chunk = args.chunk_mib * MIB
    src = work / "src.bin"
    make_file(src, args.size_mib)
    port = free_port()
    env = {
        **os.environ,
        "VAM_HOME": str(work / "home"),
        "VAM_UPLOAD_URI": f"s3://{bucket}/uploads",
        "VAM_LANDING_URI": f"s3://{bucket}/landing",
        "VAM_S3_ENDPOINT_URL": weed.endpoint_url,
        "VAM_S3_ACCESS_KEY": access,
        "VAM_S3_SECRET_KEY": secret,
    }
    vam = str(Path(sys.executable).with_name("vam"))
    server = subprocess.Popen(
        [vam, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    result: dict = {"size_mib": args.size_mib, "chunk_mib": args.chunk_mib, "cores": os.cpu_count()}
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        result["server_idle_rss_mib"] = round(psutil.Process(server.pid).memory_info().rss / MIB, 1)
        runs = []
        for _ in range(args.reps):  # interleaved, so that load on the machine hits all three alike
            runs.append(
                (
                    baseline(client, bucket, src, chunk),
                    tus_upload(url, src, chunk, False)[0],
                    tus_upload(url, src, chunk, True)[0],
                )
            )
        base, plain, summed = (min(r[i] for r in runs) for i in range(3))
        for n in args.parallel:  # `vam upload --parallel N`: partial uploads at once, then concatenated
            t0 = time.perf_counter()
            subprocess.run(
                [vam, "upload", str(src), "--server", url, "--chunk-size", str(args.chunk_mib)]
                + ["--parallel", str(n), "--json"],
                env={**env, "VAM_HOME": str(work / "client")},
                check=True,
                stdout=subprocess.DEVNULL,
            )
            seconds = time.perf_counter() - t0
            result[f"vam_upload_parallel{n}_s"] = round(seconds, 2)
            result[f"vam_upload_parallel{n}_ratio"] = round(base / seconds, 3)
        mb = args.size_mib
        result.update(
            {
                "runs_s": [[round(x, 2) for x in r] for r in runs],
                "s3_multipart_s": round(base, 2),
                "s3_multipart_mib_s": round(mb / base, 1),
                "tus_s": round(plain, 2),
                "tus_mib_s": round(mb / plain, 1),
                "ratio_best": round(base / plain, 3),
                "ratio_median": round(statistics.median(r[0] / r[1] for r in runs), 3),
                "tus_sha1_s": round(summed, 2),
                "tus_sha1_mib_s": round(mb / summed, 1),
                "ratio_sha1_best": round(base / summed, 3),
                "ratio_sha1_median": round(statistics.median(r[0] / r[2] for r in runs), 3),
            }
        )
        print(json.dumps(result), file=sys.stderr)
        if args.rss_size_mib:
            big = work / "big.bin"
            if args.rss_size_mib != args.size_mib:
                src.unlink()
                make_file(big, args.rss_size_mib)
            else:
                big = src
            sampler = Sampler(server.pid)
            sampler.start()
            seconds, answer = tus_upload(url, big, chunk, False)
            sampler.stop_flag.set()
            sampler.join()
            result.update(
                {
                    "rss_upload_mib": args.rss_size_mib,
                    "rss_upload_s": round(seconds, 2),
                    "server_peak_rss_mib": round(sampler.peak / MIB, 1),
                    "landed": answer.get("vam-source-uri"),
                }
            )
    finally:
        server.terminate()
        server.wait(20)
        weed.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
