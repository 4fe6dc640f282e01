"""Decompose recordings into modes (VMD or the EMD family): .npz + PNG each, and a
stationarity (ADF) line per channel. With --config, the recordings first go through that
config's data.signal steps up to its vmd/emd step, whose options become the defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.arguments import count, output_folder
from pipeline.core.errors import UserError

if TYPE_CHECKING:
    from feature_extractors.signal import SignalPreprocessing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="recording, or folder of them")
    parser.add_argument("--out", type=output_folder, required=True, help="folder to write")
    parser.add_argument("--config", type=Path, help="YAML with data.signal (fs, steps, ...)")
    parser.add_argument("--method", type=_method, help="vmd (default), emd, eemd or ceemdan")
    parser.add_argument("--num-modes", type=count(1), help="K (default 5)")
    parser.add_argument("--alpha", type=float, help="VMD bandwidth penalty (default 1000)")
    parser.add_argument("--fs", type=float, help="sample rate of files that store none")
    parser.add_argument("--variable", help="array to read from MAT/NPZ files")
    parser.add_argument(
        "--channels", nargs="+", metavar="NAME",
        help="channels to read, by name (a CSV header's, EDF labels, else ch0 ch1 ...)",
    )  # fmt: skip
    parser.add_argument(
        "--nan-policy", choices=["raise", "interpolate"],
        help="NaN or Inf in a recording: stop on it (default) or interpolate along time",
    )  # fmt: skip
    parser.add_argument("--no-plot", action="store_true", help="skip the PNGs")
    parser.add_argument(
        "--devices", type=count(1), default=1,
        help="processes to shard the recordings over; under torchrun, one per launched process",
    )  # fmt: skip


def _method(name: str) -> str:
    from feature_extractors.signal.methods import DECOMPOSITIONS

    if name not in DECOMPOSITIONS:
        raise argparse.ArgumentTypeError(f"{name!r}: choose {', '.join(DECOMPOSITIONS)}")
    return name


def run(ns: argparse.Namespace) -> None:
    import yaml

    from feature_extractors.signal import SignalPreprocessing
    from pipeline.core.distributed import run_on_ranks

    signal, method, options = {}, "vmd", {}
    if ns.config:
        loaded = yaml.safe_load(ns.config.read_text()) or {}
        signal = dict((loaded.get("data") or {}).get("signal") or loaded.get("signal") or {})
        steps = signal.get("steps") or []
        cut = next((i for i, s in enumerate(steps) if next(iter(s)) in ("vmd", "emd")), len(steps))
        if cut < len(steps):
            ((name, options),) = steps[cut].items()
            options = dict(options or {})
            method = options.pop("method", name)
            options.pop("residual", None)
        signal["steps"] = steps[:cut]
    given = {"fs": ns.fs, "variable": ns.variable, "channels": ns.channels,
             "nan_policy": ns.nan_policy}  # fmt: skip
    for key, value in given.items():
        if value is not None:
            signal[key] = value
    method = ns.method or method
    num_modes = ns.num_modes or options.pop("num_modes", 5)
    options.pop("num_modes", None)
    if ns.alpha is not None:
        options["alpha"] = ns.alpha
    if method != "vmd":
        options.pop("alpha", None)
    try:
        preprocessing = SignalPreprocessing(**signal)
    except (TypeError, ValueError) as err:
        raise UserError(f"{ns.config}: {err}") from None
    run_on_ranks(_decompose_on_rank, ns.devices, ns, preprocessing, method, num_modes, options)


def _decompose_on_rank(
    ns: argparse.Namespace,
    preprocessing: SignalPreprocessing,
    method: str,
    num_modes: int,
    options: dict,
) -> None:
    from pipeline.core.distributed import rank_and_world
    from pipeline.prepare.decompose import decompose_recordings

    try:
        rows, report = decompose_recordings(
            ns.path,
            ns.out,
            preprocessing=preprocessing,
            method=method,
            num_modes=num_modes,
            plot=not ns.no_plot,
            **options,
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    if rank_and_world()[0] != 0:
        return
    for _, reason in report.failed:
        print(f"  skipped {reason}", file=sys.stderr)
    if not rows:
        print(f"error: no recording under {ns.path} could be decomposed.", file=sys.stderr)
        sys.exit(2)
    for row in rows:
        if row["adf_p_value"] == "":
            adf = "ADF: pip install statsmodels"
        else:
            verdict = (
                "stationary" if row["stationary"] else "non-stationary (unit root not rejected)"
            )
            adf = f"ADF {row['adf_statistic']} (p={row['adf_p_value']}) {verdict}"
        print(f"{row['path']} {row['channel']}: {adf}; modes at {row['center_frequencies_hz']} Hz")
    print(
        f"decompose: {method.upper()} K={num_modes}: {len(report.written)} written, "
        f"{len(report.skipped)} up to date, {len(report.failed)} skipped; {len(rows)} channels "
        f"-> {ns.out} (.npz{'' if ns.no_plot else ' and .png'} per recording, decompose.csv)"
    )
