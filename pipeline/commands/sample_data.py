"""Write a built-in sample dataset: 4-class signals (.npy), 4-class machine vibration (WAV),
long activity recordings with interval labels (CSV), 4-class camera-motion videos, the
5-class camera-motion benchmark (train/test videos from disjoint photos), the 5-class scenes
benchmark (the class is the scene; test videos film parts of it never seen in training), or
4-class synchronized video + vibration samples (fusion: camera motion x machine state)."""

from __future__ import annotations

import argparse

from pipeline.core.arguments import count, output_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind",
        choices=["signals", "machines", "activity", "videos", "camera-motion", "scenes", "fusion"],
        help="which data set (above)",
    )
    parser.add_argument("out", type=output_folder, help="folder to create")
    parser.add_argument(
        "--per-class", type=count(1),
        help="samples per class (signals 40, machines 30, videos 24, camera-motion and scenes 24 "
        "train + a third as many test, fusion 24); recordings for activity (4)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")


def run(ns: argparse.Namespace) -> None:
    from pipeline.prepare import sample_data

    makers = {
        "signals": lambda n: sample_data.make_signal_dataset(ns.out, n or 40, seed=ns.seed),
        "machines": lambda n: sample_data.make_machine_dataset(ns.out, n or 30, seed=ns.seed),
        "activity": lambda n: sample_data.make_activity_recordings(ns.out, n or 4, seed=ns.seed),
        "videos": lambda n: sample_data.make_video_dataset(ns.out, n or 24, seed=ns.seed),
        "camera-motion": lambda n: sample_data.make_camera_motion_dataset(
            ns.out, n or 24, max(1, (n or 24) // 3), seed=ns.seed
        ),
        "scenes": lambda n: sample_data.make_scene_dataset(
            ns.out, n or 24, max(1, (n or 24) // 3), seed=ns.seed
        ),
        "fusion": lambda n: sample_data.make_fusion_dataset(ns.out, n or 24, seed=ns.seed),
    }
    root = makers[ns.kind](ns.per_class)
    print(f"sample-data: wrote {ns.kind} dataset to {root}")
