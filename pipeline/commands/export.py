"""Save a video checkpoint as one TorchScript module: preprocessed frames (and their motion
descriptors) -> logits."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.core.arguments import add_device_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help=".ckpt file from fit")
    parser.add_argument("--out", required=True, type=Path, help="TorchScript file to write")
    # a traced module keeps the device of its trace in its graph
    add_device_argument(parser, default="cpu")


def run(ns: argparse.Namespace) -> None:
    from feature_extractors.video import MotionSettings
    from pipeline.apply.classify import export_video_classifier, load_classifier

    classifier = load_classifier(ns.checkpoint)
    module, info = export_video_classifier(classifier, device=ns.device)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(ns.out), _extra_files={"seqclass.json": json.dumps(info)})
    size, motion = info["frame_size"], info["motion"]
    inputs = f"frames [B, T, 3, {size}, {size}] float, lengths [B] int64"
    if motion is not None:
        inputs += f", motion [B, T, {MotionSettings(**motion).dim}] float"
    print(
        f"export: {ns.out}: forward({inputs}) -> logits [B, {len(info['class_names'])}] over "
        f"{info['class_names']}, with every input on {ns.device} (where it was traced: export "
        "again with --device for another); frames are preprocessed with the backbone weights' "
        "transforms"
        + (
            ", and motion holds MotionStream(MotionSettings(**info['motion'])) of the decoded "
            "RGB frames (feature_extractors.video)"
            if motion is not None
            else ""
        )
        + ". Load it with torch.jit.load; seqclass.json inside the file (info) holds the class "
        "names, the motion settings and the feature settings."
    )
