"""Enrichment benchmark: how long speech, scenes, labels and moderation take on a 60 s clip.

Run as ``.venv/bin/python bench/bench_enrich.py [--seconds 60] [--keep]``. In one temp directory it:

1. makes a test clip: 1920x1080 25 fps H.264 (x264 CRF 18) + AAC, eight shots of different lavfi
   sources joined with hard cuts at known frames (moving patterns, static bars, a fractal zoom,
   cellular automata, gradients, per-frame noise), and espeak-ng reading a few paragraphs of
   ordinary English from 1.5 s on (about 54 s of speech; the text is the WER reference);
2. waits (up to ``--max-wait`` seconds) until the 1-minute load average is below ``--max-load``;
3. runs the real pipeline, ``vam process CLIP --json``, as a child process in an isolated
   environment (VAM_HOME and AIRFLOW_HOME in the temp dir, a fresh catalog database made with
   ``vam.devstack.ensure_catalog`` + ``create_database``, dropped at the end) and reads the run's task
   instance durations from AIRFLOW_HOME/airflow.db: transcript (x real time, WER), scenes (frames
   per second, cuts found), labels and moderation (seconds per keyframe), the enrichment stage next
   to the transcode and quality stages, and what a 2-slot pool would make of them;
4. calls the enrichment functions directly (no Airflow), each once in a fresh Python process like an
   Airflow task process: ``transcript.transcribe``, ``scenes.detect_scenes``,
   ``scenes.extract_keyframes``, ``labels.classify``, ``moderation.moderate``, ``embeddings.embed``,
   with model load (imports included) apart from the call, CPU seconds and peak RSS; and
   ``detect_scenes`` again with torch on one thread (one core is what it can count on beside an encode
   on two cores);
5. prints a report. Exit status 1 when the pipeline does not reach ``ready``.

``vam process`` runs the DAG with ``dag.test()``: one task at a time, in one process (so a module
or model loaded by one task is already there for the next). Stage times are therefore sums of task
times. While it runs, the CPU time of its process tree and of the machine is sampled every 0.25 s, so
each task's cores (and other processes' load meanwhile) can be read off its start and end; the
side-by-side estimates (:func:`simulate`) replay the measured tasks on the 2-slot pool from those.
The isolated environment, the Airflow task durations and the CPU/RSS measurement of child processes
are bench_transcode.py's helpers, imported from it.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from bench_transcode import (
    MIB,
    PipelineRun,
    TaskRun,
    check_ok,
    code_version,
    fresh_catalog,
    init_airflow_db,
    isolate_environment,
    machine,
    machine_busy_seconds,
    progress,
    run_measured,
    run_pipeline,
)

from vam.enrich.transcript import word_error_rate
from vam.media import tools
from vam.settings import load_settings

WIDTH, HEIGHT, FPS = 1920, 1080, 25
SPEECH_START = 1.5  # seconds of silence before the voice
SPEECH_RATE = 150  # espeak-ng words per minute
CUT_TOLERANCE = 2  # frames: a found cut this close to a true one counts as found
POOL_SLOTS = 2  # the `transcode` pool of the local stack: one slot per core on this machine
ENRICHMENT_TASKS = ("transcript", "scenes", "labels", "moderation")
# The direct calls, in order; detect_scenes_1thread is detect_scenes with torch on one thread.
STEPS = (
    "transcribe",
    "detect_scenes",
    "detect_scenes_1thread",
    "extract_keyframes",
    "classify",
    "moderate",
    "embed",
)

# The spoken reference: an ordinary office update, ~150 words (~54 s at 150 words per minute).
REFERENCE_PARAGRAPHS = (
    "Good morning, and welcome to the weekly update from the video team. This week we moved the whole "
    "archive to the new storage system, and every file has been checked twice. The old servers will be "
    "switched off at the end of the month, so please copy anything you still need before then.",
    "Next, a few words about the spring campaign. The first trailer is finished, and the second one is "
    "being edited now. We expect to publish both on Friday afternoon, after the legal team has reviewed "
    "the music licenses.",
    "Finally, a reminder about the training sessions. They start on Tuesday at ten o'clock in the large "
    "meeting room on the third floor. Bring your laptop and a pair of headphones. If you cannot attend, "
    "the recordings will be available on the intranet by the end of the week. Thank you, and have a "
    "good day.",
)

# (lavfi source, share of the clip): every shot looks unlike its neighbours, so each join is a hard cut.
# Small sources are scaled up (nearest neighbour for the cellular automata, to keep them crisp).
UPSCALE = f"scale={WIDTH}:{HEIGHT}:flags=neighbor"
SHOTS = (
    (f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", 0.13),  # moving pattern and counters
    (f"smptehdbars=size={WIDTH}x{HEIGHT}:rate={FPS}", 0.11),  # static: no cut may be found inside
    (f"mandelbrot=size=960x540:rate={FPS}:maxiter=100,scale={WIDTH}:{HEIGHT}", 0.15),  # zooming fractal
    (f"life=size=480x270:rate={FPS}:mold=10:ratio=0.1:life_color=#00ff00,{UPSCALE}", 0.09),  # game of life
    (f"gradients=size={WIDTH}x{HEIGHT}:rate={FPS}:speed=0.03", 0.145),  # slowly turning gradients
    (f"cellauto=size=480x270:rate={FPS}:rule=110,{UPSCALE}", 0.12),  # scrolling automaton
    (f"color=c=0x2a5c8a:size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=30:allf=t+u", 0.10),  # noise per frame
    (f"rgbtestsrc=size={WIDTH}x{HEIGHT}:rate={FPS}", 0.155),  # static
)


# -- the clip ------------------------------------------------------------------------------------


@dataclass
class Clip:
    path: Path
    seconds: float
    frames: int
    cuts: list[int]  # the first frame of every shot but the first
    reference: str  # what the voice says
    speech_seconds: float


def audio_seconds(path: Path) -> float:
    argv = [tools.ffprobe_path(), "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]
    proc = subprocess.run([*argv, str(path)], capture_output=True, text=True, check=True)
    return float(proc.stdout.strip())


def make_speech(wav: Path, seconds: float) -> tuple[str, float]:
    """espeak-ng reading the reference paragraphs into ``wav``; whole sentences are dropped from the end
    until the speech fits in the clip (only matters for --seconds well under 60)."""
    sentences = [s.strip() + "." for p in REFERENCE_PARAGRAPHS for s in p.split(".") if s.strip()]
    while sentences:
        text = " ".join(sentences)
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(SPEECH_RATE), "-w", str(wav), text], check=True)
        spoken = audio_seconds(wav)
        if SPEECH_START + spoken <= seconds - 0.5 or len(sentences) == 1:
            return text, spoken
        sentences.pop()
    raise SystemExit("no reference text")


def shot_boundaries(frames: int) -> list[int]:
    """First frame of each shot: the shares of SHOTS, rounded to whole frames."""
    starts, share = [], 0.0
    for _, part in SHOTS:
        starts.append(round(share * frames))
        share += part
    return starts


def make_clip(out: Path, seconds: float, work: Path) -> Clip:
    frames = round(seconds * FPS)
    starts = shot_boundaries(frames)
    lengths = [end - start for start, end in zip(starts, [*starts[1:], frames], strict=True)]
    reference, speech_seconds = make_speech(work / "speech.wav", seconds)
    argv = [tools.ffmpeg_path(), "-hide_banner", "-nostdin", "-y", "-v", "error"]
    graph = []
    for n, ((source, _), length) in enumerate(zip(SHOTS, lengths, strict=True)):
        argv += ["-f", "lavfi", "-i", source]
        graph.append(f"[{n}:v]trim=end_frame={length},setpts=PTS-STARTPTS,format=yuv420p,setsar=1[v{n}]")
    argv += ["-i", str(work / "speech.wav")]
    joined = "".join(f"[v{n}]" for n in range(len(SHOTS)))
    graph.append(f"{joined}concat=n={len(SHOTS)}:v=1:a=0[v]")
    delay = round(SPEECH_START * 1000)
    graph.append(f"[{len(SHOTS)}:a]aresample=48000,adelay={delay}:all=1,apad,atrim=end={seconds}[a]")
    argv += ["-filter_complex", ";".join(graph), "-map", "[v]", "-map", "[a]", "-t", str(seconds)]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-g", "50"]
    argv += ["-r", str(FPS), "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart", str(out)]
    log = work / "clip.log"
    usage = run_measured(argv, log=log)
    check_ok("generating the clip", usage, log)
    return Clip(out, seconds, frames, starts[1:], reference, speech_seconds)


# -- waiting for a quiet machine -----------------------------------------------------------------


def wait_for_quiet(max_load: float, max_wait: float) -> tuple[float, float]:
    """Poll the 1-minute load average until it is below ``max_load`` (at most ``max_wait`` seconds).
    Returns (the load when the wait ended, seconds waited)."""
    started = time.monotonic()
    while True:
        load = os.getloadavg()[0]
        waited = time.monotonic() - started
        if load < max_load or waited >= max_wait:
            return load, waited
        progress(f"1-minute load {load:.2f} >= {max_load}: waiting ({waited:.0f} of {max_wait:.0f} s)")
        time.sleep(15)


# -- the pipeline's figures ------------------------------------------------------------------------


def rendition_of(task: TaskRun) -> str:
    return task.label.partition("[")[2].rstrip("]") or str(task.map_index)


def cut_frames(scenes: list[dict[str, Any]], fps: float) -> list[int]:
    """The first frame of every scene but the first."""
    return [round(float(s["start"]) * fps) for s in scenes[1:]]


def match_cuts(true_cuts: list[int], found: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(true cuts found within CUT_TOLERANCE frames, true cuts missed, found cuts that match none)."""
    unused = sorted(found)
    hit, missed = [], []
    for cut in true_cuts:
        near = [f for f in unused if abs(f - cut) <= CUT_TOLERANCE]
        if near:
            best = min(near, key=lambda f: abs(f - cut))
            unused.remove(best)
            hit.append(best - cut)
        else:
            missed.append(cut)
    return hit, missed, unused


class CpuTimeline(threading.Thread):
    """Samples the cumulative CPU seconds of this process's descendants (the live ones plus the children
    they have reaped, e.g. ffmpeg) and of the whole machine (/proc/stat), so that each Airflow task's
    CPU time can be read off its start and end (how many cores it kept busy) and how busy other
    processes kept the machine meanwhile."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(name="cpu-timeline", daemon=True)
        self.interval = interval
        self.times: list[float] = []  # epoch seconds
        self.ours: list[float] = []  # CPU seconds of our descendants so far
        self.machine: list[float] = []  # busy CPU seconds of the machine since boot
        self._done = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._done.is_set():
            total = 0.0
            for proc in me.children(recursive=True):
                try:
                    t = proc.cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                total += t.user + t.system + t.children_user + t.children_system
            self.times.append(time.time())
            self.ours.append(max(total, self.ours[-1] if self.ours else 0.0))  # caught mid-exit: no dips
            self.machine.append(machine_busy_seconds())
            self._done.wait(self.interval)

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=5)

    def _at(self, values: list[float], when: float) -> float:
        if not values:
            return 0.0
        i = bisect.bisect_left(self.times, when)
        if i == 0 or i == len(values):
            return values[min(i, len(values) - 1)]
        t0, t1 = self.times[i - 1], self.times[i]
        return values[i - 1] + (values[i] - values[i - 1]) * (when - t0) / (t1 - t0) if t1 > t0 else values[i]

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds our processes used between two epoch times."""
        return max(0.0, self._at(self.ours, end) - self._at(self.ours, start))

    def others_between(self, start: float, end: float) -> float:
        """Cores other processes kept busy on average between two epoch times."""
        if end <= start:
            return 0.0
        machine = self._at(self.machine, end) - self._at(self.machine, start)
        return max(0.0, (machine - self.cpu_between(start, end)) / (end - start))


@dataclass
class Job:
    """A task for :func:`simulate`: ``seconds`` alone, keeping ``cores`` busy; runs in ``queue``."""

    name: str
    seconds: float
    cores: float
    queue: str
    after: str | None = None


def simulate(jobs: list[Job], slots: dict[str, int], cores: float) -> dict[str, float]:
    """When each job ends, run side by side: a queue runs at most ``slots[queue]`` jobs at once (no entry:
    no limit), jobs start in list order as soon as ``after`` has ended and their queue has a free slot,
    and running jobs share the CPUs in proportion to the cores each kept busy alone (no job runs faster
    than alone). No scheduling delay."""
    work = {j.name: j.seconds * j.cores for j in jobs}  # CPU seconds still to do
    ends: dict[str, float] = {}
    running: list[Job] = []
    started: set[str] = set()
    now = 0.0
    while len(ends) < len(jobs):
        for job in jobs:
            busy = sum(1 for r in running if r.queue == job.queue)
            ready = job.after is None or job.after in ends
            if job.name not in started and ready and busy < slots.get(job.queue, len(jobs)):
                running.append(job)
                started.add(job.name)
        if not running:
            raise ValueError("jobs wait for a job that is not in the list")
        share = min(1.0, cores / sum(r.cores for r in running))
        step = min(work[r.name] / (r.cores * share) for r in running)
        now += step
        for job in list(running):
            work[job.name] -= job.cores * share * step
            if work[job.name] <= 1e-9:
                ends[job.name] = now
                running.remove(job)
    return ends


@dataclass
class Estimate:
    name: str
    renditions_done: float
    enrichment_done: float


def task_cores(task: TaskRun, timeline: CpuTimeline | None, limit: float) -> float:
    """The cores ``task`` kept busy on average when it ran (between 0.05 and ``limit``)."""
    if timeline is None or task.seconds <= 0:
        return limit
    return min(limit, max(0.05, timeline.cpu_between(task.start, task.end) / task.seconds))


def side_by_side(pipeline: PipelineRun, timeline: CpuTimeline | None) -> list[Estimate]:
    """What the LocalExecutor would make of the measured tasks (see :func:`simulate` and the report)."""
    cores = float(len(os.sched_getaffinity(0)))
    tasks = {t.label: t for t in pipeline.tasks}
    media = [t for t in pipeline.tasks if t.task_id == "transcode"]
    media += [t for t in pipeline.tasks if t.task_id == "quality"]
    enrich = [tasks[name] for name in ENRICHMENT_TASKS if name in tasks]

    def job(task: TaskRun, queue: str) -> Job:
        after = None
        if task.task_id == "quality":
            after = f"transcode[{rendition_of(task)}]"
        elif task.task_id in ("labels", "moderation"):
            after = "scenes"
        return Job(task.label, task.seconds, task_cores(task, timeline, cores), queue, after)

    renditions = [t.label for t in media]
    out = []
    models = (
        # The picture: the renditions on the pool's slots, enrichment beside them on a worker of
        # its own, one task after another.
        ("enrichment beside, no CPU contention", "enrich", float("inf")),
        (f"enrichment beside, {cores:g} cores shared", "enrich", cores),
        # As the DAG is wired: transcript and scenes are in the `transcode` pool and ready before the
        # transcode tasks (those wait for plan), so they take its two slots first; labels and
        # moderation (default pool) start when scenes ends.
        (f"as wired (pool shared), {cores:g} cores", "wired", cores),
    )
    for name, layout, cpus in models:
        if layout == "enrich":
            jobs = [job(t, "transcode") for t in media] + [job(t, "enrich") for t in enrich]
            slots = {"transcode": POOL_SLOTS, "enrich": 1}
        else:
            pool = [t for t in enrich if t.task_id in ("transcript", "scenes")]
            rest = [t for t in enrich if t not in pool]
            jobs = [job(t, "transcode") for t in pool + media] + [job(t, "default") for t in rest]
            slots = {"transcode": POOL_SLOTS}
        ends = simulate(jobs, slots, cpus)
        out.append(
            Estimate(
                name,
                max((ends[r] for r in renditions), default=0.0),
                max((ends[t.label] for t in enrich), default=0.0),
            )
        )
    return out


# -- direct calls, each in a fresh process ---------------------------------------------------------


def _rss() -> int:
    return psutil.Process().memory_info().rss


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _cpu_now() -> float:
    """CPU seconds of this process and its finished children (ffmpeg)."""
    return _cpu(resource.getrusage(resource.RUSAGE_SELF)) + _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))


def _load_step(step: str) -> Any:
    """Load the model ``step`` uses (imports included); returns the function to time. The module-private
    loaders are the ones the functions call on first use: calling them first separates load from run.
    The arguments come from the settings, as the pipeline's steps (vam.steps.enrich) pass them."""
    from vam.enrich import embeddings, labels, moderation, scenes, transcript
    from vam.runtime import Runtime

    settings = Runtime.from_env().settings  # also points vam.media.tools at the configured ffmpeg
    threads = settings.ffmpeg_threads
    if step == "transcribe":
        whisper = transcript.WhisperConfig(
            backend=settings.whisper_backend,
            model=settings.whisper_model,
            compute_type=settings.whisper_compute_type,
            language=settings.whisper_language,
            threads=settings.whisper_threads,
        )
        transcript.speech_to_text(whisper).load()  # type: ignore[attr-defined]
        return lambda clip, state: transcript.transcribe(clip, whisper=whisper, ffmpeg_threads=threads)
    if step in ("detect_scenes", "detect_scenes_1thread"):
        if step == "detect_scenes_1thread":
            import torch

            torch.set_num_threads(1)
        scenes._load_model()
        return lambda clip, state: scenes.detect_scenes(clip, threads=threads)
    if step == "extract_keyframes":  # no model: ffmpeg seeks
        return lambda clip, state: scenes.extract_keyframes(
            clip, state["scenes"], Path(state["out_dir"]), threads=threads
        )
    if step == "classify":
        labels._model()
        labels.class_names()
        return lambda clip, state: labels.classify(
            [Path(p) for p in state["keyframes"]], top_k=settings.labels_top_k
        )
    if step == "moderate":
        moderation._load_detector()
        return lambda clip, state: moderation.moderate([Path(p) for p in state["keyframes"]])
    if step == "embed":
        embeddings.load_model()
        return lambda clip, state: embeddings.embed(state["segments"])
    raise ValueError(f"unknown step {step!r}")


def _carry(step: str, result: Any, state: dict[str, Any]) -> int:
    """Keep what later steps need from ``result``; returns how many items the step handled."""
    if step == "transcribe":
        state["text"] = result["text"]
        state["segments"] = [s["text"] for s in result["segments"]]
        return len(result["segments"])
    if step == "detect_scenes_1thread":
        return int(result["frames"])
    if step == "detect_scenes":
        state["scenes"] = result["scenes"]
        state["frames"] = result["frames"]
        return int(result["frames"])
    if step == "extract_keyframes":
        state["keyframes"] = [str(p) for p in result]
    return len(result)


def run_step_here(step: str, clip: Path, state_path: Path) -> None:
    """The child side of :func:`run_direct`: load, call once, write the figures into the state file."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    state = json.loads(state_path.read_text())
    base_rss = _rss()
    cpu0, t0 = _cpu_now(), time.monotonic()
    call = _load_step(step)
    cpu1, t1 = _cpu_now(), time.monotonic()
    loaded_rss = _rss()
    result = call(clip, state)
    cpu2, t2 = _cpu_now(), time.monotonic()
    items = _carry(step, result, state)
    state.setdefault("figures", {})[step] = {
        "load_s": t1 - t0,
        "load_cpu_s": cpu1 - cpu0,
        "run_s": t2 - t1,
        "run_cpu_s": cpu2 - cpu1,
        "items": items,
        "base_rss": base_rss,
        "loaded_rss": loaded_rss,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "children_max_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }
    state_path.write_text(json.dumps(state))


def run_direct(clip: Path, env: dict[str, str], work: Path) -> dict[str, Any]:
    """Each enrichment function once, each in its own Python process; returns the shared state with
    ``figures`` per step (and the transcript text, scenes, keyframes they produced)."""
    state_path = work / "direct.json"
    keyframes = work / "direct-keyframes"
    keyframes.mkdir()
    state_path.write_text(json.dumps({"out_dir": str(keyframes)}))
    for step in STEPS:
        progress(f"direct: {step}")
        log = work / f"direct-{step}.log"
        argv = [sys.executable, str(Path(__file__).resolve()), "--step", step]
        argv += ["--clip", str(clip), "--state", str(state_path)]
        usage = run_measured(argv, log=log, env=env)
        check_ok(f"direct {step}", usage, log)
        state = json.loads(state_path.read_text())
        state["figures"][step]["process_wall_s"] = usage.wall
        state["figures"][step]["other_load"] = usage.busy_elsewhere
        state_path.write_text(json.dumps(state))
    return json.loads(state_path.read_text())


# -- report ------------------------------------------------------------------------------------------


def _x(clip_seconds: float, seconds: float) -> str:
    return f"{clip_seconds / seconds:.1f}x" if seconds > 0 else "n/a"


def _per(seconds: float, count: int) -> str:
    return f"{seconds / count:.2f} s" if count else "n/a"


def print_header(
    clip: Clip, pipeline: PipelineRun, load_before: float, waited: float, load_after: float
) -> None:
    p = pipeline.usage
    print("\n=== vam enrichment benchmark ===")
    print(f"machine : {machine()}")
    print(f"code    : {code_version()}")
    print(
        f"clip    : {clip.seconds:g} s {WIDTH}x{HEIGHT} {FPS} fps H.264 (x264 veryfast CRF 18) + AAC; "
        f"{len(SHOTS)} shots, {len(clip.cuts)} hard cuts; espeak-ng speech {SPEECH_START:g}-"
        f"{SPEECH_START + clip.speech_seconds:.1f} s, {len(clip.reference.split())} words"
    )
    print(
        f"load    : 1-minute load average {load_before:.2f} when vam process started (waited {waited:.0f} s),"
        f" {load_after:.2f} at the end; other processes kept {p.busy_elsewhere:.2f} CPUs busy during"
        " vam process"
    )
    print(
        f"pipeline: vam process {p.wall:.1f} s wall, {p.cpu:.1f} CPU s ({p.cpu / p.wall:.2f} cores busy on"
        f" average), peak RSS of the tree {p.peak_rss / MIB:.0f} MiB; status {pipeline.result.get('status')}"
    )


def print_tasks(pipeline: PipelineRun, timeline: CpuTimeline | None) -> None:
    print("\npipeline tasks (Airflow task instances; dag.test runs one at a time, in one process)")
    print(f"  {'task':22} {'seconds':>8} {'CPU s':>7} {'cores':>6} {'others':>7}")
    for t in pipeline.tasks:
        cpu = timeline.cpu_between(t.start, t.end) if timeline else 0.0
        cores = cpu / t.seconds if t.seconds > 0 else 0.0
        others = timeline.others_between(t.start, t.end) if timeline else 0.0
        print(f"  {t.label:22} {t.seconds:8.1f} {cpu:7.1f} {cores:6.2f} {others:7.2f}  {t.state}")
    print("  cores: CPU s / seconds (vam and its ffmpeg); others: cores other processes kept busy meanwhile")


def print_enrichment(clip: Clip, pipeline: PipelineRun) -> None:
    result, stage = pipeline.result, pipeline.stage_seconds
    transcript = result.get("transcript") or {}
    scenes = result.get("scenes") or []
    keyframes = len(result.get("keyframes") or [])
    wer = word_error_rate(clip.reference, transcript.get("text") or "")
    hit, missed, false = match_cuts(clip.cuts, cut_frames(scenes, FPS))
    offsets = ", ".join(f"{d:+d}" for d in hit) or "-"
    t_tr, t_sc, t_lb, t_md = (stage(t) for t in ENRICHMENT_TASKS)
    print("\nenrichment tasks (durations from the Airflow metadata DB)")
    print(
        f"  transcript  {t_tr:7.1f} s  {_x(clip.seconds, t_tr)} real time (takes {t_tr / clip.seconds:.3f} of"
        f" the clip's duration); WER {100 * wer:.1f}% over {len(clip.reference.split())} words;"
        f" {len(transcript.get('segments') or [])} segment(s)"
    )
    print(
        f"  scenes      {t_sc:7.1f} s  {clip.frames / t_sc if t_sc else 0:.0f} frames/s"
        f" ({clip.frames} frames, {_x(clip.seconds, t_sc)} real time); {len(scenes)} scenes for"
        f" {len(SHOTS)} shots: {len(hit)} of {len(clip.cuts)} cuts found within {CUT_TOLERANCE} frames"
        f" (offsets {offsets}), missed {missed or 'none'}, false cuts at frames {false or 'none'}"
    )
    print(f"  labels      {t_lb:7.1f} s  {_per(t_lb, keyframes)} per keyframe ({keyframes} keyframes)")
    print(f"  moderation  {t_md:7.1f} s  {_per(t_md, keyframes)} per keyframe")
    print("  (task times include model loads not already done by an earlier task of the same process,")
    print("  fetching the source/keyframes, outputs and catalog writes)")


def print_stages(clip: Clip, pipeline: PipelineRun, timeline: CpuTimeline | None) -> None:
    stage = pipeline.stage_seconds
    enrichment = sum(stage(t) for t in ENRICHMENT_TASKS)
    transcode, quality = stage("transcode"), stage("quality")
    renditions = sum(1 for t in pipeline.tasks if t.task_id == "transcode")
    print(f"\n  {'stage (sum of its tasks)':48} {'seconds':>8} {'x real time':>12}")
    rows = [
        ("enrichment: transcript+scenes+labels+moderation", enrichment),
        (f"transcode ({renditions} renditions)", transcode),
        ("quality (VMAF/SSIM/PSNR + decode check)", quality),
        ("transcode + quality", transcode + quality),
    ]
    for label, sec in rows:
        print(f"  {label:48} {sec:8.1f} {_x(clip.seconds, sec):>12}")
    other = stage("quality_gate") + stage("package") + stage("publish")
    print(f"  {'quality_gate + package + publish':48} {other:8.1f}")
    if transcode:
        print(
            f"  enrichment / transcode {enrichment / transcode:.2f};"
            f" enrichment / (transcode + quality) {enrichment / (transcode + quality):.2f}"
        )

    cores = len(os.sched_getaffinity(0))
    print(
        textwrap.fill(
            f"side by side (LocalExecutor), estimated from the tasks above: the `transcode` pool has"
            f" {POOL_SLOTS} slots; each task needs the CPU time it used alone and runs no faster than alone;"
            " tasks running together share the cores in proportion to the cores each used alone; no"
            " scheduling delay; a quality task starts when its rendition's transcode ends, labels and"
            " moderation when scenes ends; list order is start priority.",
            width=100,
            initial_indent="\n",
        )
    )
    for est in side_by_side(pipeline, timeline):
        verdict = "before" if est.enrichment_done <= est.renditions_done else "AFTER"
        print(
            f"  {est.name:40} renditions done at {est.renditions_done:6.1f} s, enrichment at"
            f" {est.enrichment_done:6.1f} s: enrichment ends {verdict} the renditions"
        )
    if timeline:
        media = [t for t in pipeline.tasks if t.task_id in ("transcode", "quality")]
        enrich = [t for t in pipeline.tasks if t.task_id in ENRICHMENT_TASKS]
        cpu_media = sum(timeline.cpu_between(t.start, t.end) for t in media)
        cpu_enrich = sum(timeline.cpu_between(t.start, t.end) for t in enrich)
        print(
            f"  CPU: transcode+quality {cpu_media:.1f} s, enrichment {cpu_enrich:.1f} s: on {cores} cores no"
            f" schedule finishes both in less than {(cpu_media + cpu_enrich) / cores:.0f} s, nor the"
            f" renditions alone in less than {cpu_media / cores:.0f} s"
        )


def print_direct(clip: Clip, direct: dict[str, Any]) -> None:
    figures = direct["figures"]
    print("\ndirect calls (no Airflow), each once in a fresh Python process; load includes the imports")
    header = (
        f"{'function':21} {'load s':>6} {'run s':>6} {'CPU s':>6} {'items':>12} {'per item':>9}"
        f" {'base MiB':>8} {'loaded MiB':>10} {'peak MiB':>8} {'ffmpeg MiB':>10} {'others':>6}"
    )
    print(f"  {header}")
    units = {"transcribe": "segments", "extract_keyframes": "keyframes", "embed": "texts"}
    for step in STEPS:
        f = figures[step]
        unit = "frames" if step.startswith("detect_scenes") else units.get(step, "images")
        items = f"{f['items']} {unit}"
        per = f"{1000 * f['run_s'] / f['items']:.1f} ms" if f["items"] and step != "transcribe" else "-"
        print(
            f"  {step:21} {f['load_s']:6.2f} {f['run_s']:6.2f} {f['run_cpu_s']:6.2f} {items:>12} {per:>9}"
            f" {f['base_rss'] / MIB:8.0f} {f['loaded_rss'] / MIB:10.0f}"
            f" {f['peak_rss'] / MIB:8.0f} {f['children_max_rss'] / MIB:10.0f} {f['other_load']:6.2f}"
        )
    tr, sc, one = figures["transcribe"], figures["detect_scenes"], figures["detect_scenes_1thread"]
    print(
        f"  transcribe: {_x(clip.seconds, tr['run_s'])} real time without the model load"
        f" ({_x(clip.seconds, tr['load_s'] + tr['run_s'])} with it); WER"
        f" {100 * word_error_rate(clip.reference, direct.get('text') or ''):.1f}%"
    )
    print(
        f"  detect_scenes: {sc['items'] / sc['run_s']:.0f} frames/s without the model load"
        f" ({sc['items'] / (sc['load_s'] + sc['run_s']):.0f} with it); with torch on 1 thread"
        f" {one['items'] / one['run_s']:.0f} frames/s"
    )
    print("  CPU s: of the call (with its ffmpeg); peak MiB: ru_maxrss of the Python process (imports, model")
    print("  and call); ffmpeg MiB: its largest ffmpeg child; others: cores other processes kept busy")


def print_report(
    *,
    clip: Clip,
    pipeline: PipelineRun,
    timeline: CpuTimeline | None,
    direct: dict[str, Any] | None,
    load_before: float,
    waited: float,
    load_after: float,
) -> None:
    print_header(clip, pipeline, load_before, waited, load_after)
    print_tasks(pipeline, timeline)
    print_enrichment(clip, pipeline)
    print_stages(clip, pipeline, timeline)
    if direct:
        print_direct(clip, direct)
    result = pipeline.result
    reason = f": {result.get('reason')}" if result.get("status") != "ready" else ""
    print(f"\nstatus  : {result.get('status')} (asset {result.get('asset_id')}){reason}")


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length (default 60)")
    parser.add_argument("--profile", default="default", help="encoding profile (default: default)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (printed at the end)")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait for a 1-minute load below this")
    parser.add_argument("--max-wait", type=float, default=600.0, help="seconds to wait for it (default 600)")
    parser.add_argument("--no-direct", action="store_true", help="skip the direct calls")
    # The child side of the direct calls (see run_direct).
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 10:
        parser.error("--seconds must be at least 10 (eight shots of at least half a second, and speech)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step:
        run_step_here(args.step, args.clip, args.state)
        return 0
    work = Path(tempfile.mkdtemp(prefix="vam-bench-enrich-"))
    succeeded = False
    try:
        isolate_environment(work)
        with fresh_catalog() as dsn:
            env = isolate_environment(work, dsn)
            settings = load_settings()  # the clip is made with the ffmpeg the pipeline uses
            tools.configure(ffmpeg=settings.ffmpeg or None, ffprobe=settings.ffprobe or None)
            progress(f"making a {args.seconds:g} s {WIDTH}x{HEIGHT} clip with speech and cuts in {work}")
            clip = make_clip(work / "clip.mp4", args.seconds, work)
            progress("creating the Airflow metadata DB (not timed)")
            init_airflow_db(env, work / "airflow-init.log")

            load_before, waited = wait_for_quiet(args.max_load, args.max_wait)
            if load_before >= args.max_load:
                progress(f"WARNING: load still {load_before:.2f} after {waited:.0f} s; measuring anyway")
            progress(f"vam process --profile {args.profile} (several minutes; load {load_before:.2f})")
            timeline = CpuTimeline()
            timeline.start()
            try:
                pipeline = run_pipeline(clip.path, args.profile, env, work)
            finally:
                timeline.finish()
            status = pipeline.result.get("status")
            progress(f"pipeline: {status} in {pipeline.usage.wall:.1f} s")
            direct = None if args.no_direct else run_direct(clip.path, env, work)
            print_report(
                clip=clip,
                pipeline=pipeline,
                timeline=timeline,
                direct=direct,
                load_before=load_before,
                waited=waited,
                load_after=os.getloadavg()[0],
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
