"""Grouped encoding: one ffmpeg process decodes the source once and encodes a whole ladder.

:func:`encode_group` is :func:`vam.media.encode.encode_rendition` for several plans at once: one
:func:`~vam.media.encode.ladder_split_argv` process (a ``split`` filter feeds every encoder, each
with the settings it gets alone), every output written to a temp file beside its final path,
checked (planned size, upright) and only then renamed, so a killed or failed run leaves no output.
The benchmark measured this 1.4x cheaper in CPU than one process per rendition (bench/README.md,
(a) against (b)); the price is one task for the ladder instead of one per rendition.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from vam.errors import VamError
from vam.media import tools
from vam.media.encode import add_expectations, describe_output, ladder_split_argv
from vam.media.types import MediaInfo, Profile, RenditionPlan

log = logging.getLogger(__name__)

GROUPINGS = ("rendition", "ladder")


def encode_group(
    source: Path,
    plans: list[RenditionPlan],
    profile: Profile,
    outs: list[Path],
    info: MediaInfo,
    *,
    threads: int = 0,
) -> list[dict[str, Any]]:
    """Encode every plan from one decode of ``source``; one result per plan, as
    :func:`~vam.media.encode.encode_rendition` returns it (``encode_seconds`` is the whole group's)."""
    if not plans or len(plans) != len(outs):
        raise ValueError(f"need one output per plan, got {len(plans)} plans and {len(outs)} outputs")
    outs = [Path(o).absolute() for o in outs]
    tmps = [o.with_name(f".{o.name}.{uuid.uuid4().hex[:12]}.part") for o in outs]
    for out in outs:
        out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = []
    try:
        tools.run(ladder_split_argv(Path(source), plans, profile, tmps, info, threads=threads))
        elapsed = time.monotonic() - started
        for plan, tmp in zip(plans, tmps, strict=True):
            made = describe_output(tmp)
            if (made["width"], made["height"]) != (plan.width, plan.height):
                raise VamError(
                    f"rendition {plan.name!r}: encoded {made['width']}x{made['height']}, planned "
                    f"{plan.width}x{plan.height}; check the filters in the ffmpeg log"
                )
            if made["rotation"]:
                raise VamError(f"rendition {plan.name!r}: the output still carries a display rotation")
            add_expectations(made, info, plan, elapsed)
            made["grouped"] = True
            results.append(made)
        for tmp, out in zip(tmps, outs, strict=True):
            os.replace(tmp, out)
    finally:
        for tmp in tmps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    log.info("encoded %s in one decode in %.1f s", ", ".join(p.name for p in plans), elapsed)
    return results
