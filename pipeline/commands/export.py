"""Save a checkpoint as one TorchScript module: preprocessed frames (and their motion
descriptors) -> logits for a video model, feature sequences -> logits for any other."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.core.arguments import add_device_argument, output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help=".ckpt file from fit")
    parser.add_argument("--out", required=True, type=output_file, help="TorchScript file to write")
    # a traced module keeps the device of its trace in its graph
    add_device_argument(parser, default="cpu")


def run(ns: argparse.Namespace) -> None:
    from pipeline.apply.classify import export_classifier, load_classifier

    module, info = export_classifier(load_classifier(ns.checkpoint), device=ns.device)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(ns.out), _extra_files={"seqclass.json": json.dumps(info)})
    print(
        f"export: {ns.out}: forward({info['inputs']}) -> {info['outputs']} over "
        f"{info['class_names']}, with every input on {ns.device} (where it was traced: export "
        f"again with --device for another); {_how_inputs_are_made(info)}. Load it with "
        "torch.jit.load; seqclass.json inside the file (info) holds the class names, the inputs "
        "and outputs, the motion settings and the feature settings."
    )


def _how_inputs_are_made(info: dict) -> str:
    """How a user makes the exported module's inputs from raw data."""
    kind = (info["feature_settings"] or {}).get("kind", "sequences")
    motion = (
        "MotionStream(MotionSettings(**info['motion'])) of the decoded RGB frames, sampled as "
        "info['feature_settings']['sampling'] says, a new stream for each video (it keeps the "
        "frame before; feature_extractors.video)"
    )
    if kind == "video" and info["frame_size"] is not None:
        how = "frames are preprocessed with the backbone weights' transforms"
        return how + (f", and motion holds {motion}" if info["motion"] is not None else "")
    return {
        "video": f"features are {motion}",
        "signal": "features are SignalPreprocessing.from_settings(info['feature_settings'])"
        ".process(recording).data.T (feature_extractors.signal), or the windows of it the model "
        "was trained on",
        "fusion": "features are what `seqclass extract` writes for a sample folder, every stream "
        "present",
    }.get(kind, "features are sequence files like those it was trained on")
