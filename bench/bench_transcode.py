"""Transcode benchmark: the whole ``vam process`` pipeline against the same ladder in plain ffmpeg.

Run as ``.venv/bin/python bench/bench_transcode.py [--seconds 20] [--profile default] [--keep]
[--cold]`` (or ``make bench``). In one temp directory it:

1. generates a 1080p25 source with motion (``testsrc2`` blended with a zooming ``mandelbrot``,
   a beeping sine on the audio track), x264 CRF 16, so decoding the source is cheap;
2. runs the real CLI, ``vam process SOURCE --json``, as a child process in an isolated
   environment (its own VAM_HOME, AIRFLOW_HOME with a SQLite metadata DB, a fresh catalog
   database, file:// objects) and measures wall time, CPU seconds and peak memory of its process
   tree; the Airflow metadata DB and the catalog schema are created beforehand (a one-time cost,
   reported apart) unless ``--cold``;
3. reads the run's task instances from AIRFLOW_HOME/airflow.db and breaks the wall time down by
   stage (the media stages, then any other task of the DAG, e.g. enrichment), plus what falls
   outside the tasks (process start, imports, dag.test scheduling, exit);
4. encodes the same ladder (vam's ``plan_ladder`` + ``encode_argv``, same settings) with plain
   ffmpeg: (a) one process per rendition, one after another (as dag.test runs tasks), and (b) one
   process with a ``split`` filter (``ladder_split_argv``); and, as a reference, a decode-only
   pass over the source;
5. prints a report with the ratios. Exit status 1 when the pipeline does not reach ``ready``
   (the report is still printed: the tasks that ran have timings) or a plain ffmpeg run fails.

CPU seconds are user+system time of the child process tree (``getrusage(RUSAGE_CHILDREN)``
deltas); "peak RSS" is the largest sum of RSS over the process tree, sampled every 0.2 s
(shared pages are counted once per process); "max RSS" is ``ru_maxrss`` of the tree, i.e. the
largest single process; "other load" is how many CPUs other processes on the machine kept busy
meanwhile (/proc/stat): the figures are only comparable when it is near 0.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from vam import devstack
from vam.media import tools
from vam.media.encode import encode_argv, ladder_split_argv
from vam.media.ladder import plan_ladder
from vam.media.probe import probe
from vam.media.profiles import load_profile
from vam.media.types import MediaInfo, Profile, RenditionPlan
from vam.settings import load_settings

# The media pipeline's tasks, in DAG order. Any other task of the run (enrichment: transcript, scenes,
# labels, ...) is reported after them, under its own name.
MEDIA_STAGES = (
    "register",
    "probe",
    "ladder_candidates",
    "ladder_trial",
    "plan",
    "transcode",
    "score",
    "quality",
    "quality_gate",
    "package",
    "publish",
    "finalize",
)
TARGET_TRANSCODE_RATIO = 1.15  # the issue's aim for a 20 s clip: transcode stage / (a)
TARGET_QUALITY_SHARE = 0.40  # quality stage CPU / transcode stage CPU (issue 11, 20 s clip)
TARGET_PIPELINE_VS_B = 1.6  # whole pipeline wall / (b) in ladder mode on a 60 s clip (issue 11)
SAMPLE_INTERVAL = 0.2  # seconds between two samples of the process tree's memory
KEEP_ENV = ("VAM_FFMPEG", "VAM_FFPROBE", "VAM_FFMPEG_THREADS")  # tool settings shared by both sides
BUSY_WARNING = 0.1  # cores busy with other processes above which the report warns
MIB = 1024 * 1024


# -- measuring child processes -------------------------------------------------------------------


class TreeSampler(threading.Thread):
    """Samples a process and all its descendants until :meth:`finish`: the summed RSS (peaks kept)
    and the CPU seconds used so far (a timeline, to tell how much CPU each pipeline task used)."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        super().__init__(name=f"rss-{pid}", daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0  # bytes: the largest tree-wide RSS sum seen
        self.peak_other = 0  # bytes: the same, counting only processes that are not ffmpeg/ffprobe
        self.cpu_timeline: list[tuple[float, float]] = []  # (epoch seconds, CPU seconds of the tree)
        self._done = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.is_set():
            self._sample(root)
            self._done.wait(self.interval)

    def _sample(self, root: psutil.Process) -> None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        now = time.time()
        total = other = 0
        cpu = 0.0
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                name = proc.name()
                # children_*: descendants already reaped (an ffmpeg that finished counts from there)
                t = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            total += rss
            if not name.startswith(("ffmpeg", "ffprobe")):
                other += rss
            cpu += t.user + t.system + t.children_user + t.children_system
        self.peak = max(self.peak, total)
        self.peak_other = max(self.peak_other, other)
        if not self.cpu_timeline or cpu >= self.cpu_timeline[-1][1]:  # drop a sample that lost a process
            self.cpu_timeline.append((now, cpu))

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=5)


@dataclass
class Usage:
    """What one or more child processes cost."""

    wall: float = 0.0  # seconds
    user: float = 0.0  # CPU seconds
    system: float = 0.0
    peak_rss: int = 0  # bytes, sampled sum over the process tree
    peak_rss_other: int = 0  # bytes, the same without ffmpeg/ffprobe processes
    max_rss: int = 0  # bytes, ru_maxrss: the largest single process of the tree
    started_at: float = 0.0  # epoch seconds (to line up with Airflow's timestamps)
    ended_at: float = 0.0
    returncode: int = 0
    elsewhere: float = 0.0  # CPU seconds the machine spent on processes that are not ours meanwhile
    cpu_timeline: list[tuple[float, float]] = field(default_factory=list)  # (epoch s, CPU s so far)

    @property
    def cpu(self) -> float:
        return self.user + self.system

    def cpu_at(self, when: float) -> float:
        """CPU seconds the process tree had used at ``when`` (epoch), interpolated between samples."""
        line = self.cpu_timeline
        if not line:
            return 0.0
        i = bisect.bisect_left(line, (when, -1.0))
        if i == 0:
            return line[0][1]
        if i == len(line):
            return line[-1][1]
        (t0, c0), (t1, c1) = line[i - 1], line[i]
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0) if t1 > t0 else c1

    def cpu_between(self, start: float, end: float) -> float:
        return self.cpu_at(end) - self.cpu_at(start)

    def add(self, other: Usage) -> None:
        """Account for ``other`` run after this one (sequentially)."""
        self.wall += other.wall
        self.user += other.user
        self.system += other.system
        self.peak_rss = max(self.peak_rss, other.peak_rss)
        self.peak_rss_other = max(self.peak_rss_other, other.peak_rss_other)
        self.max_rss = max(self.max_rss, other.max_rss)
        self.started_at = self.started_at or other.started_at
        self.ended_at = other.ended_at
        self.returncode = self.returncode or other.returncode
        self.elsewhere += other.elsewhere

    @property
    def busy_elsewhere(self) -> float:
        """Cores busy with other work during the measurement (0: a quiet machine)."""
        return self.elsewhere / self.wall if self.wall > 0 else 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent not idle since boot (/proc/stat; steal time counts as busy)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_measured(
    argv: list[str], *, log: Path, env: dict[str, str] | None = None, stdout: Path | None = None
) -> Usage:
    """Run ``argv`` to completion (stderr to ``log``) and measure its whole process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_before, busy_before = resource.getrusage(resource.RUSAGE_SELF), machine_busy_seconds()
    with log.open("wb") as err, (stdout or Path(os.devnull)).open("wb") as out:
        started_at, started = time.time(), time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            # wait4, not proc.wait(): its rusage is this child's alone (ru_maxrss of RUSAGE_CHILDREN
            # is a maximum over every child this script ever had).
            _, status, child = os.wait4(proc.pid, 0)
        finally:
            sampler.finish()
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_after, busy_after = resource.getrusage(resource.RUSAGE_SELF), machine_busy_seconds()
    children = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    own = own_after.ru_utime - own_before.ru_utime + own_after.ru_stime - own_before.ru_stime
    return Usage(
        wall=wall,
        user=after.ru_utime - before.ru_utime,
        system=after.ru_stime - before.ru_stime,
        peak_rss=sampler.peak,
        peak_rss_other=sampler.peak_other,
        max_rss=child.ru_maxrss * 1024,  # KiB on Linux
        started_at=started_at,
        ended_at=started_at + wall,
        returncode=proc.returncode,
        elsewhere=max(0.0, busy_after - busy_before - children - own),
        cpu_timeline=[(started_at, 0.0), *sampler.cpu_timeline, (started_at + wall, children)],
    )


def check_ok(what: str, usage: Usage, log: Path) -> None:
    if usage.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise SystemExit(f"{what} exited {usage.returncode}; last lines of {log}:\n" + "\n".join(tail))


# -- environment ---------------------------------------------------------------------------------


def isolate_environment(home: Path, catalog_dsn: str | None = None) -> dict[str, str]:
    """This process's environment without VAM_*/AIRFLOW* settings (tool paths kept), pointing vam
    and Airflow at ``home``. Applied to ``os.environ`` too, so both sides read the same settings."""
    for key in [k for k in os.environ if k.startswith(("VAM_", "AIRFLOW")) and k not in KEEP_ENV]:
        del os.environ[key]
    os.environ["VAM_HOME"] = str(home / "vam")
    os.environ["AIRFLOW_HOME"] = str(home / "airflow")
    if catalog_dsn:
        os.environ["VAM_CATALOG_DSN"] = catalog_dsn
    return dict(os.environ)


@contextmanager
def fresh_catalog() -> Iterator[str]:
    """A new, migrated catalog database on the machine's PostgreSQL (or the embedded one); dropped
    at the end."""
    from vam.catalog.db import connect, migrate
    from vam.catalog.dsn import create_database, drop_database

    base = devstack.ensure_catalog(load_settings())
    name = f"vam_bench_{uuid.uuid4().hex[:10]}"
    dsn = create_database(base, name)
    try:
        conn = connect(dsn)
        try:
            migrate(conn)
        finally:
            conn.close()
        yield dsn
    finally:
        drop_database(base, name)
        pgdata = Path(load_settings().home) / "pgdata"
        if pgdata.exists():  # no PostgreSQL on 127.0.0.1:5432: an embedded one was started under home
            devstack.stop_embedded_catalog(pgdata)


def init_airflow_db(env: dict[str, str], log: Path) -> Usage:
    """Create the Airflow metadata DB in AIRFLOW_HOME the way `vam process` does (one-time cost)."""
    code = (
        "from vam.orchestration import env as airflow_env; from vam.settings import load_settings; "
        "airflow_env.configure(load_settings()); airflow_env.ensure_metadata_db()"
    )
    usage = run_measured([sys.executable, "-c", code], log=log, env=env)
    check_ok("airflow metadata DB init", usage, log)
    return usage


# -- the source ----------------------------------------------------------------------------------


def make_source(out: Path, seconds: float, log: Path) -> Usage:
    """A 1080p25 clip with motion everywhere: testsrc2 (moving patterns, counters) averaged with a
    zooming Mandelbrot set, and a beeping 440 Hz tone; x264 CRF 16 (high quality, cheap to decode)."""
    graph = (
        "[1:v]scale=1920:1080:flags=bicubic,format=yuv420p[m];"
        "[0:v]format=yuv420p[t];[t][m]blend=all_mode=average[v]"
    )
    argv = [tools.ffmpeg_path(), "-hide_banner", "-nostdin", "-y"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}"]
    argv += ["-f", "lavfi", "-i", "mandelbrot=size=960x540:rate=25:maxiter=100"]
    argv += ["-f", "lavfi", "-i", f"sine=frequency=440:beep_factor=4:sample_rate=48000:duration={seconds}"]
    argv += ["-filter_complex", graph, "-map", "[v]", "-map", "2:a", "-t", str(seconds)]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", "-g", "50"]
    argv += ["-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", str(out)]
    usage = run_measured(argv, log=log)
    check_ok("generating the source", usage, log)
    return usage


# -- the pipeline ----------------------------------------------------------------------------------


@dataclass
class TaskRun:
    task_id: str
    map_index: int
    label: str  # task_id, or task_id[rendition] for mapped tasks
    start: float  # epoch seconds
    end: float
    state: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class PipelineRun:
    usage: Usage
    result: dict[str, Any]
    tasks: list[TaskRun] = field(default_factory=list)
    encode_seconds: dict[str, float] = field(default_factory=dict)  # rendition -> ffmpeg + ffprobe

    def stage_seconds(self, stage: str) -> float:
        return sum(t.seconds for t in self.tasks if t.task_id == stage)

    def stage_cpu(self, stage: str) -> float:
        """CPU seconds of the process tree while the stage's tasks ran (tasks run one at a time)."""
        return sum(self.usage.cpu_between(t.start, t.end) for t in self.tasks if t.task_id == stage)

    @property
    def task_seconds(self) -> float:
        return sum(t.seconds for t in self.tasks)


def _epoch(value: Any) -> float:
    """An Airflow timestamp from SQLite (naive means UTC) as epoch seconds."""
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def read_task_runs(airflow_db: Path, dag_id: str, run_id: str) -> list[TaskRun]:
    """The task instances of one DAG run, in start order."""
    conn = sqlite3.connect(f"file:{airflow_db}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(task_instance)")}
        rendered = "rendered_map_index" if "rendered_map_index" in columns else "NULL"
        rows = conn.execute(
            f"SELECT task_id, map_index, {rendered} AS rendered, start_date, end_date, state"
            " FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        ).fetchall()
    finally:
        conn.close()
    runs = []
    for row in rows:
        if row["start_date"] is None or row["end_date"] is None:  # skipped / never ran
            continue
        label = row["task_id"]
        if row["map_index"] >= 0:
            label += f"[{row['rendered'] or row['map_index']}]"
        runs.append(
            TaskRun(
                row["task_id"],
                row["map_index"],
                label,
                _epoch(row["start_date"]),
                _epoch(row["end_date"]),
                str(row["state"]),
            )
        )
    return sorted(runs, key=lambda t: t.start)


def read_encode_seconds(airflow_db: Path, dag_id: str, run_id: str) -> dict[str, float]:
    """How long ffmpeg (plus the ffprobe of the output) took inside each transcode task, from the
    tasks' XCom results; empty when the XCom table cannot be read."""
    try:
        conn = sqlite3.connect(f"file:{airflow_db}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'transcode'"
                " AND key = 'return_value'",
                (dag_id, run_id),
            ).fetchall()
        finally:
            conn.close()
        out = {}
        for (value,) in rows:
            data = json.loads(value)
            data = json.loads(data) if isinstance(data, str) else data
            for item in data if isinstance(data, list) else [data]:  # a group: its renditions
                out[item["name"]] = float(item["encode_seconds"])
        return out
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return {}


def run_pipeline(source: Path, profile: str, env: dict[str, str], work: Path) -> PipelineRun:
    vam = Path(sys.executable).with_name("vam")
    argv = [str(vam), "process", str(source), "--json", "--profile", profile, "--force"]
    out, log = work / "vam-process.json", work / "vam-process.log"
    usage = run_measured(argv, log=log, env=env, stdout=out)
    try:
        result = json.loads(out.read_text())
    except ValueError:
        check_ok("vam process", usage, log)  # exits with the log's tail when vam failed
        raise SystemExit(f"vam process printed no JSON; see {out} and {log}") from None
    run = PipelineRun(usage, result)
    airflow_run = result.get("airflow_run") or {}
    airflow_db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    if airflow_run.get("run_id") and airflow_db.exists():
        run.tasks = read_task_runs(airflow_db, airflow_run["dag_id"], airflow_run["run_id"])
        run.encode_seconds = read_encode_seconds(airflow_db, airflow_run["dag_id"], airflow_run["run_id"])
    return run


# -- plain ffmpeg ----------------------------------------------------------------------------------


def run_sequential(
    source: Path, plans: list[RenditionPlan], prof: Profile, info: MediaInfo, out_dir: Path, threads: int
) -> tuple[Usage, dict[str, Usage]]:
    """(a) One ffmpeg per rendition, one after another, with vam's own command lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    total, each = Usage(), {}
    for plan in plans:
        log = out_dir / f"{plan.name}.log"
        argv = encode_argv(source, plan, prof, out_dir / f"{plan.name}.mp4", info, threads=threads)
        usage = run_measured(argv, log=log)
        check_ok(f"ffmpeg ({plan.name})", usage, log)
        each[plan.name] = usage
        total.add(usage)
    return total, each


def run_split(
    source: Path, plans: list[RenditionPlan], prof: Profile, info: MediaInfo, out_dir: Path, threads: int
) -> Usage:
    """(b) One ffmpeg that decodes once and encodes every rendition (split filter)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outs = [out_dir / f"{plan.name}.mp4" for plan in plans]
    log = out_dir / "split.log"
    usage = run_measured(ladder_split_argv(source, plans, prof, outs, info, threads=threads), log=log)
    check_ok("ffmpeg (split ladder)", usage, log)
    return usage


def run_decode(source: Path, threads: int, log: Path) -> Usage:
    """Reference: decoding the source's video alone (what every per-rendition process repeats)."""
    argv = [tools.ffmpeg_path(), "-hide_banner", "-nostdin"]
    argv += ["-threads", str(threads)] if threads > 0 else []
    argv += ["-i", str(source), "-map", "0:v:0", "-f", "null", "-"]
    usage = run_measured(argv, log=log)
    check_ok("ffmpeg (decode only)", usage, log)
    return usage


# -- report ------------------------------------------------------------------------------------------


def code_version() -> str:
    """The checked-out commit of the vam being measured (and whether it has local changes)."""
    from vam.settings import REPO_ROOT

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(REPO_ROOT), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("log", "-1", "--format=%h %s")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return f"{REPO_ROOT} (not a git checkout)"
    return f"{REPO_ROOT} at {commit}" + (" (+ uncommitted changes)" if dirty else "")


def ffmpeg_version() -> str:
    proc = subprocess.run([tools.ffmpeg_path(), "-version"], capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()[0]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0))
    memory = psutil.virtual_memory().total / 1024**3
    return f"{cpus} CPUs ({model}), {memory:.1f} GiB RAM, Python {sys.version.split()[0]}"


def _mib(value: int) -> str:
    return f"{value / MIB:.0f}"


def _ratio(num: float, den: float) -> str:
    return f"{num / den:.2f}" if den > 0 else "n/a"


def _file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def print_report(
    *,
    args: argparse.Namespace,
    prof: Profile,
    info: MediaInfo,
    plans: list[RenditionPlan],
    pipeline: PipelineRun,
    seq: Usage,
    seq_each: dict[str, Usage],
    split: Usage,
    decode: Usage,
    setup: Usage | None,
    work: Path,
) -> None:
    from vam.storage.file import file_uri_to_path

    p = pipeline.usage
    mbps = info.size_bytes * 8 / info.duration / 1e6 if info.duration else 0.0
    print("\n=== vam transcode benchmark ===")
    print(f"machine : {machine()}")
    print(f"code    : {code_version()}")
    print(f"ffmpeg  : {ffmpeg_version()}")
    print(f"          {tools.ffmpeg_path()}")
    print(
        f"source  : {info.duration:.1f} s {info.width}x{info.height} {info.fps:g} fps {info.video_codec} "
        f"{mbps:.1f} Mb/s + {info.audio_codec} (testsrc2 + mandelbrot, x264 CRF 16)"
    )
    ladder = ", ".join(f"{x.name} {x.width}x{x.height} {x.codec} crf {x.crf} {x.preset}" for x in plans)
    print(f"profile : {prof.key}: {ladder}; VMAF {prof.vmaf_model} n_subsample {prof.vmaf_n_subsample}")
    print(f"enrich  : {'off (VAM_ENRICHMENT=false)' if getattr(args, 'no_enrichment', False) else 'on'}")
    if args.seconds < 20:
        print(f"note    : a {args.seconds:g} s clip; the < {TARGET_TRANSCODE_RATIO} aim is for 20 s or more")
    if setup is not None:
        print(f"setup   : Airflow metadata DB created beforehand in {setup.wall:.1f} s (not in the figures)")
    else:
        print("setup   : --cold: the pipeline's wall time includes creating the Airflow metadata DB")

    print(f"\n{'':44} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'max RSS MiB':>12} {'other load':>11}")
    rows = [
        ("pipeline: vam process (Airflow dag.test)", p),
        ("(a) ffmpeg per rendition, sequential", seq),
        ("(b) ffmpeg once, split filter", split),
        ("ref: decode the source only", decode),
    ]
    for label, u in rows:
        print(
            f"{label:44} {u.wall:8.1f} {u.cpu:8.1f} {_mib(u.peak_rss):>13} {_mib(u.max_rss):>12}"
            f" {u.busy_elsewhere:11.2f}"
        )
    print(f"{'  of which the Python processes (peak)':44} {'':8} {'':8} {_mib(p.peak_rss_other):>13}")

    transcode, transcode_cpu = pipeline.stage_seconds("transcode"), pipeline.stage_cpu("transcode")
    print("\nratios (wall)")
    print(f"  pipeline / (a)                          {_ratio(p.wall, seq.wall):>6}")
    print(f"  pipeline / (b)                          {_ratio(p.wall, split.wall):>6}")
    print(
        f"  transcode stage / (a)                   {_ratio(transcode, seq.wall):>6}"
        f"   (aim: < {TARGET_TRANSCODE_RATIO}; the orchestration overhead on the encoding itself)"
    )
    print(f"  (a) / (b)                               {_ratio(seq.wall, split.wall):>6}")
    print("ratios (CPU seconds; barely affected by other load)")
    print(f"  pipeline / (a)                          {_ratio(p.cpu, seq.cpu):>6}")
    print(f"  transcode stage / (a)                   {_ratio(transcode_cpu, seq.cpu):>6}")
    print(f"  (a) / (b)                               {_ratio(seq.cpu, split.cpu):>6}")
    n = len(plans)
    print(
        f"  (a) - (b): {seq.cpu - split.cpu:.1f} CPU s; (n-1) x decode-only: {(n - 1) * decode.cpu:.1f} CPU s"
        f" (the source decoded {n} times instead of once)"
    )

    print("\npipeline tasks (Airflow task instances, in start order; CPU: the whole process tree)")
    for t in pipeline.tasks:
        extra = ""
        name = t.label.partition("[")[2].rstrip("]")
        if t.task_id == "transcode" and name in seq_each:
            a = seq_each[name]
            extra = f"   (a): {a.wall:5.1f} s, CPU {a.cpu:5.1f} s"
            if name in pipeline.encode_seconds:
                extra += f"; ffmpeg+ffprobe in the task {pipeline.encode_seconds[name]:5.1f} s"
        cpu = p.cpu_between(t.start, t.end)
        print(f"  {t.label:24} {t.seconds:6.1f} s  CPU {cpu:6.1f} s  {t.state:8}{extra}")

    print(f"\n  {'stage':22} {'wall s':>8} {'% wall':>7} {'CPU s':>8} {'% CPU':>6}")

    def line(label: str, sec: float, cpu: float, note: str = "") -> None:
        pct_wall = 100 * sec / p.wall if p.wall else 0.0
        pct_cpu = 100 * cpu / p.cpu if p.cpu else 0.0
        print(f"  {label:22} {sec:8.1f} {pct_wall:6.1f}% {cpu:8.1f} {pct_cpu:5.1f}%{note}")

    others = list(dict.fromkeys(t.task_id for t in pipeline.tasks if t.task_id not in MEDIA_STAGES))
    for stage in MEDIA_STAGES:
        line(stage, pipeline.stage_seconds(stage), pipeline.stage_cpu(stage))
    for stage in others:
        line(stage, pipeline.stage_seconds(stage), pipeline.stage_cpu(stage), "  (not a media stage)")
    tasks = pipeline.task_seconds
    tasks_cpu = sum(pipeline.stage_cpu(stage) for stage in [*MEDIA_STAGES, *others])
    line("sum of tasks", tasks, tasks_cpu)
    line("outside tasks", p.wall - tasks, p.cpu - tasks_cpu)
    if pipeline.tasks:
        first, last = pipeline.tasks[0].start, max(t.end for t in pipeline.tasks)
        startup, teardown = first - p.started_at, p.ended_at - last
        between = p.wall - tasks - startup - teardown
        print(f"    before the first task  {startup:6.1f} s  (interpreter, imports, DB check, DAG load)")
        print(f"    between tasks          {between:6.1f} s  (dag.test scheduling)")
        print(f"    after the last task    {teardown:6.1f} s  (summary from the catalog, exit)")
    quality = pipeline.stage_seconds("score") + pipeline.stage_seconds("quality")
    quality_cpu = pipeline.stage_cpu("score") + pipeline.stage_cpu("quality")
    packaging = pipeline.stage_seconds("package") + pipeline.stage_seconds("publish")
    print(
        f"  quality measurement (score + quality: VMAF n_subsample {prof.vmaf_n_subsample}, decode check):"
        f" {quality:.1f} s = {100 * quality / p.wall:.0f}% of the pipeline's wall; packaging (package +"
        f" publish): {packaging:.1f} s = {100 * packaging / p.wall:.0f}%"
    )
    print(
        f"  grouping {args.grouping}: quality stage CPU / transcode stage CPU "
        f"{_ratio(quality_cpu, transcode_cpu)} (aim <= {TARGET_QUALITY_SHARE}); pipeline / (b) wall "
        f"{_ratio(p.wall, split.wall)}, CPU {_ratio(p.cpu, split.cpu)} (aim in ladder mode, 60 s: <= "
        f"{TARGET_PIPELINE_VS_B})"
    )

    print("\nrenditions (same settings on both sides; sizes should agree)")
    header = (
        f"{'name':8} {'size':>11} {'pipeline MB':>12} {'(a) MB':>8} {'(b) MB':>8} {'VMAF':>6} {'SSIM':>6}"
    )
    print(f"  {header}")
    for r in pipeline.result.get("renditions") or []:
        size = _file_size(file_uri_to_path(r["uri"])) if str(r["uri"]).startswith("file://") else 0
        a = _file_size(work / "a" / f"{r['name']}.mp4")
        b = _file_size(work / "b" / f"{r['name']}.mp4")
        vmaf = f"{r['vmaf']:.1f}" if r.get("vmaf") is not None else "-"
        ssim = f"{r['ssim']:.3f}" if r.get("ssim") is not None else "-"
        print(
            f"  {r['name']:8} {r['width']:>5}x{r['height']:<5} {size / 1e6:12.2f} {a / 1e6:8.2f}"
            f" {b / 1e6:8.2f} {vmaf:>6} {ssim:>6}"
        )
    result = pipeline.result
    reason = f": {result.get('reason')}" if result.get("status") != "ready" else ""
    print(f"\nstatus  : {result.get('status')} (asset {result.get('asset_id')}){reason}")
    busiest = max(u.busy_elsewhere for _, u in rows)
    if busiest > BUSY_WARNING:
        print(
            f"WARNING : other processes kept up to {busiest:.2f} of {len(os.sched_getaffinity(0))} CPUs busy"
            " during the measurements ('other load'): wall times are inflated and ratios unreliable"
        )


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="source length (default 20)")
    parser.add_argument("--profile", default="default", help="encoding profile (default: default)")
    parser.add_argument(
        "--grouping",
        choices=("rendition", "ladder", "both"),
        default="rendition",
        help="VAM_ENCODE_GROUPING of the pipeline run; both: one run each (default rendition)",
    )
    parser.add_argument(
        "--no-enrichment",
        action="store_true",
        help="VAM_ENRICHMENT=false: the media pipeline and its quality checks only",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (printed at the end)")
    parser.add_argument(
        "--cold", action="store_true", help="do not create the Airflow metadata DB before timing the pipeline"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vam-bench-"))
    succeeded = False
    try:
        isolate_environment(work)  # first without a DSN: an embedded catalog would live under work/
        with fresh_catalog() as dsn:
            env = isolate_environment(work, dsn)
            settings = load_settings()
            tools.configure(ffmpeg=settings.ffmpeg or None, ffprobe=settings.ffprobe or None)
            prof = load_profile(args.profile, settings.profiles_dir)
            threads = settings.ffmpeg_threads

            source = work / "source.mp4"
            progress(f"generating a {args.seconds:g} s 1080p25 source in {work}")
            make_source(source, args.seconds, work / "source.log")
            info = probe(source)
            plans = plan_ladder(info, prof)

            setup = None
            if not args.cold:
                progress("creating the Airflow metadata DB (not timed)")
                setup = init_airflow_db(env, work / "airflow-init.log")
            groupings = ["rendition", "ladder"] if args.grouping == "both" else [args.grouping]
            pipelines = {}
            for grouping in groupings:
                progress(f"vam process --profile {prof.key}, grouping {grouping} (a few minutes)")
                run_dir = work / grouping
                run_dir.mkdir()
                run_env = {**env, "VAM_ENCODE_GROUPING": grouping}
                if args.no_enrichment:
                    run_env["VAM_ENRICHMENT"] = "false"
                pipelines[grouping] = run_pipeline(source, args.profile, run_env, run_dir)
                status = pipelines[grouping].result.get("status")
                progress(f"pipeline ({grouping}): {status} in {pipelines[grouping].usage.wall:.1f} s")
                if status != "ready":  # still measured and reported: the tasks that ran have timings
                    progress(f"vam process ended {status}: {pipelines[grouping].result.get('reason')}")
            status = (
                "ready" if all(x.result.get("status") == "ready" for x in pipelines.values()) else "failed"
            )

            progress(f"(a) {len(plans)} ffmpeg processes, one after another")
            seq, seq_each = run_sequential(source, plans, prof, info, work / "a", threads)
            progress(f"(b) one ffmpeg process, split filter ({len(plans)} outputs)")
            split = run_split(source, plans, prof, info, work / "b", threads)
            progress("reference: decoding the source only")
            decode = run_decode(source, threads, work / "decode.log")

            for grouping, pipeline in pipelines.items():
                print_report(
                    args=argparse.Namespace(**{**vars(args), "grouping": grouping}),
                    prof=prof,
                    info=info,
                    plans=plans,
                    pipeline=pipeline,
                    seq=seq,
                    seq_each=seq_each,
                    split=split,
                    decode=decode,
                    setup=setup,
                    work=work,
                )
        if status != "ready":
            print(f"vam process did not reach ready; see {work / 'vam-process.log'}", file=sys.stderr)
            return 1
        succeeded = True
        return 0
    finally:
        if args.keep or not succeeded:  # a failure keeps its logs
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
