"""``python -m bench``: run the benchmarks, print their sections, refresh the report.

Full mode writes docs/BENCHMARKS.md (or ``--out``). Quick mode (``--quick``, a few
minutes, for CI) takes few samples and writes only where ``--out`` says, so it never
replaces the full figures with rough ones.
"""

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import (
    DEFAULT_REPORT,
    cluster,
    cluster_report,
    dialog,
    dialog_report,
    hop,
    hop_report,
    live,
    live_report,
    machine,
    mt,
    mt_report,
    quality,
    quality_report,
    report,
    scaleout,
    scaleout_report,
    speaker,
    speaker_report,
    speech,
    speech_report,
    tts,
    tts_report,
)

SECTIONS = (
    "bus", "scaleout", "cluster", "speech", "live", "tts", "mt", "dialog", "speaker", "quality",
)  # fmt: skip
DEFAULT_SECTIONS = SECTIONS[:-1]  # quality runs when asked for: ``python -m bench quality``


@dataclass(frozen=True)
class Preset:
    speech: speech.SpeechConfig
    bus: hop.HopConfig
    live: live.LiveConfig
    scaleout: scaleout.ScaleConfig
    cluster: cluster.ClusterConfig
    tts: tts.TtsConfig
    mt: mt.MtConfig
    dialog: dialog.DialogConfig
    speaker: speaker.SpeakerConfig
    quality: quality.QualityConfig


FULL = Preset(
    speech.SpeechConfig(rounds=30, warmup=2),
    hop.HopConfig(requests=2_000, warmup=200, throughput_requests=4_000),
    live.FULL,
    scaleout.FULL,
    cluster.FULL,
    tts.FULL,
    mt.FULL,
    dialog.FULL,
    speaker.FULL,
    quality.FULL,
)
QUICK = Preset(
    speech.SpeechConfig(rounds=3, warmup=1),
    hop.HopConfig(requests=200, warmup=30, throughput_requests=400),
    live.QUICK,
    scaleout.QUICK,
    cluster.QUICK,
    tts.QUICK,
    mt.QUICK,
    dialog.QUICK,
    speaker.QUICK,
    quality.QUICK,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "section",
        nargs="*",
        metavar="SECTION",
        help=f"benchmarks to run, of {', '.join(SECTIONS)} (default: all but quality)",
    )
    parser.add_argument("--quick", action="store_true", help="few samples (CI, a few minutes)")
    parser.add_argument(
        "--out",
        type=Path,
        help="markdown file to refresh (default: docs/BENCHMARKS.md in full mode, none in quick)",
    )
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--stt-fallback",
        action="store_true",
        help="speech: keep Whisper's temperature fallback on (slow and random on this file)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(argv)
    if unknown := [s for s in args.section if s not in SECTIONS]:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    out: Path | None = args.out or (None if args.quick else DEFAULT_REPORT)
    preset = QUICK if args.quick else FULL
    if args.stt_fallback:
        preset = dataclasses.replace(
            preset, speech=dataclasses.replace(preset.speech, temperature_fallback=True)
        )
    command = " ".join(["python -m bench", *argv])
    mode = " (quick mode: few samples, for orientation only)" if args.quick else ""
    runners: dict[str, Callable[[str], str]] = {
        "speech": lambda header: speech_report.render(speech.run(preset.speech), header),
        "bus": lambda header: hop_report.render(hop.run(preset.bus), header),
        "live": lambda header: live_report.render(live.run(preset.live), header),
        "scaleout": lambda header: scaleout_report.render(scaleout.run(preset.scaleout), header),
        "cluster": lambda header: cluster_report.render(cluster.run(preset.cluster), header),
        "tts": lambda header: tts_report.render(tts.run(preset.tts), header),
        "mt": lambda header: mt_report.render(mt.run(preset.mt), header),
        "dialog": lambda header: dialog_report.render(dialog.run(preset.dialog), header),
        "speaker": lambda header: speaker_report.render(speaker.run(preset.speaker), header),
        "quality": lambda header: quality_report.render(quality.run(preset.quality), header),
    }
    chosen = (args.only or []) + args.section
    for name in SECTIONS:
        if (chosen and name not in chosen) or (not chosen and name not in DEFAULT_SECTIONS):
            continue
        load_before = machine.load_average()
        if load_before > (os.cpu_count() or 1) / 2:
            print(
                f"bench: the machine is busy (load {load_before:.2f}): figures will be noisy",
                file=sys.stderr,
                flush=True,
            )
        header = f"{machine.describe().markdown()}\nCommand: `{command}`{mode}."
        body = runners[name](header)
        body += (
            f"\n\nLoad average (1 min): {load_before:.2f} before this benchmark, "
            f"{machine.load_average():.2f} after it (its own processes included)."
        )
        print(body + "\n", flush=True)
        if out is not None:
            report.write_section(out, name, body)
            print(f"bench: wrote section {name!r} to {out}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
