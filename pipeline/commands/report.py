"""Redraw a test run's figures (confusion matrix, per-class scores, training curves) and
write its report.md: metrics, data counts, misclassified samples and configuration."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run folder of `seqclass test` (version_N)")


def run(ns: argparse.Namespace) -> None:
    from pipeline.training.reports import write_report

    print(f"report: {write_report(ns.run_dir)}")
