"""The quality gate: a Great Expectations suite over the per-rendition metrics table.

Besides the perceptual floors of each rung (VMAF, SSIM, PSNR from the profile), the suite checks
what catches a broken encode whatever its score: every rendition decodes to the end, and its
frame count and duration match what the encode had to make of the source: a result's
``expected_frame_count`` and ``expected_duration`` (:func:`vam.media.encode.expected_output`: a
variable-rate source made constant has duration x output fps frames, not its own counted frames;
video padded to its audio's length has the padded length), else the source's own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from vam.media.types import Profile

log = logging.getLogger(__name__)

SUITE_NAME = "vam_quality_gate"


@dataclass
class GateReport:
    success: bool
    failures: list[str] = field(default_factory=list)  # "360p: vmaf 20.1 below the rung's floor 30"
    table: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "; ".join(self.failures) if self.failures else "all renditions passed"


def metrics_table(
    results: list[dict[str, Any]], *, source_frame_count: int, source_duration: float
) -> list[dict[str, Any]]:
    """One row per rendition from the quality tasks' results.

    A result's ``frame_count`` and ``duration`` (what decoding it found) are compared with its
    ``expected_frame_count`` and ``expected_duration`` when it has them (what the encode reported),
    else with ``source_frame_count`` and ``source_duration``.
    """
    rows = []
    for r in results:
        expected_frames = r.get("expected_frame_count")
        expected_frames = int(source_frame_count if expected_frames is None else expected_frames)
        expected_duration = r.get("expected_duration")
        expected_duration = float(source_duration if expected_duration is None else expected_duration)
        rows.append(
            {
                "rendition": r["name"],
                "vmaf": r["vmaf"]["mean"],
                "ssim": r["ssim"]["mean"],
                "psnr": r["psnr"]["mean"],
                "min_vmaf": float(r["min_vmaf"]),
                "min_ssim": float(r["min_ssim"]),
                "min_psnr": float(r["min_psnr"]),
                "decodes": bool(r["decodes"]),
                "decode_error": r.get("decode_error"),
                "frame_count": int(r["frame_count"]),
                "expected_frame_count": expected_frames,
                "frame_delta": int(r["frame_count"]) - expected_frames,
                "duration": float(r["duration"]),
                "expected_duration": expected_duration,
                "duration_delta": abs(float(r["duration"]) - expected_duration),
            }
        )
    return rows


def _quiet_great_expectations() -> None:
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_gate(rows: list[dict[str, Any]], profile: Profile) -> GateReport:
    """Validate the metrics table against the suite built from the profile."""
    import great_expectations as gx
    import pandas as pd

    _quiet_great_expectations()
    if not rows:
        return GateReport(False, ["no renditions to check"], rows)
    df = pd.DataFrame(rows)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("vam")
        .add_dataframe_asset("rendition_metrics")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": df})
    )
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    # (expectation, how to describe an offending row)
    checks: list[tuple[Any, Any]] = [
        (
            gx.expectations.ExpectColumnValuesToBeInSet(column="decodes", value_set=[True]),
            lambda r: f"does not decode to the end ({r['decode_error'] or 'decoder error'})",
        ),
        (
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="frame_delta", min_value=-profile.max_frame_delta, max_value=profile.max_frame_delta
            ),
            lambda r: (
                f"frame count {r['frame_count']} differs from the expected {r['expected_frame_count']}"
                f" by {r['frame_delta']} (allowed {profile.max_frame_delta})"
            ),
        ),
        (
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="duration_delta", min_value=0, max_value=profile.max_duration_delta
            ),
            lambda r: (
                f"duration {r['duration']:.3f} s differs from the expected {r['expected_duration']:.3f} s"
                f" by {r['duration_delta']:.3f} s (allowed {profile.max_duration_delta})"
            ),
        ),
    ]
    for metric in ("vmaf", "ssim", "psnr"):
        checks.append(
            (
                gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=metric, column_B=f"min_{metric}", or_equal=True
                ),
                lambda r, m=metric: f"{m} {r[m]:.3f} below the rung's floor {r['min_' + m]:g}",
            )
        )

    def key(config: Any) -> tuple[str, str]:
        kwargs = config.kwargs
        return config.type, kwargs.get("column") or kwargs["column_A"]

    describers = {}
    for expectation, describe in checks:
        describers[key(suite.add_expectation(expectation).configuration)] = describe
    result = batch.validate(suite, result_format="COMPLETE")
    failures: list[str] = []
    for res in result.results:
        if res.success:
            continue
        describe = describers[key(res.expectation_config)]
        indexes = res.result.get("unexpected_index_list") or range(len(rows))
        for i in indexes:
            failures.append(f"{rows[i]['rendition']}: {describe(rows[i])}")
    report = GateReport(bool(result.success) and not failures, failures, rows)
    log.info("quality gate %s: %s", "passed" if report.success else "FAILED", report.message)
    return report
