"""`seqclass`: LightningCLI subcommands (fit, validate, test, predict) plus data commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from feature_extractors.signal import SignalPreprocessing
from feature_extractors.video import WeightsUnavailableError
from pipeline.data.datamodule import SequenceDataModule
from pipeline.data.sequence_files import SequenceDataError
from pipeline.distributed import rank_and_world, run_on_ranks
from pipeline.lit_module import SequenceClassifier
from pipeline.plots import plot_training_curves
from pipeline.prediction_writer import PredictionWriter
from pipeline.reports import write_indexed_predictions, write_metrics, write_report


def run_loggers(root: str | Path) -> list[Logger]:
    """CSV and TensorBoard loggers sharing one run folder, ``ROOT/version_N``."""
    csv_logger = CSVLogger(root, name="")
    return [csv_logger, TensorBoardLogger(root, name="", version=csv_logger.version)]


class SeqClassCLI(LightningCLI):
    """LightningCLI with checkpointing, early stopping, run folders and result files."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_loss",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val_loss", "early_stopping.patience": 10})

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = config.trainer.default_root_dir or "runs"
        config.trainer.default_root_dir = root
        # Checkpoints live beside the run folders so that `--ckpt_path last` finds them.
        if config.checkpoint.dirpath is None:
            config.checkpoint.dirpath = str(Path(root) / "checkpoints")

    def instantiate_trainer(self, **kwargs):
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = run_loggers(trainer_config["default_root_dir"])
        return super().instantiate_trainer(**kwargs)

    def after_fit(self) -> None:
        checkpoint = self.trainer.checkpoint_callback
        log_dir = self.trainer.log_dir  # every process: the run folder is broadcast from rank 0
        if self.trainer.is_global_zero and log_dir is not None:
            log = Path(log_dir) / "metrics.csv"
            if log.is_file():
                plot_training_curves(log, Path(log_dir) / "training_curves.png")
        if self.trainer.is_global_zero and checkpoint is not None:
            score = checkpoint.best_model_score
            best = f"{score.item():.4f}" if score is not None else "n/a"
            print(
                f"fit: {self.trainer.current_epoch} epochs, best {checkpoint.monitor}={best}\n"
                f"  best checkpoint: {checkpoint.best_model_path}\n"
                f"  last checkpoint: {checkpoint.last_model_path}\n"
                f"  logs and config: {log_dir}"
            )

    def after_validate(self) -> None:
        if self.trainer.is_global_zero:
            scores = {
                k: v.item() for k, v in self.trainer.callback_metrics.items() if k.startswith("val")
            }
            print("validate: " + " ".join(f"{k}={v:.4f}" for k, v in sorted(scores.items())))

    def after_test(self) -> None:
        model, data = self.model, self.datamodule
        results, log_dir = model.test_results, self.trainer.log_dir
        if not self.trainer.is_global_zero or results is None:
            return
        count = sum(map(sum, results["confusion_matrix"]))
        unit = "labelled time steps" if model.per_step else "samples"
        results = {**results, "unit": unit, "data": data.split_counts(),
                   "checkpoint": self.trainer.ckpt_path, "fit_log_dir": model.fit_log_dir}  # fmt: skip
        path = write_metrics(log_dir, results, count)
        write_indexed_predictions(
            Path(log_dir) / "test_predictions.csv", data.splits["test"], model.test_probs,
            model.class_names, data.step_labels if model.per_step else None,
        )  # fmt: skip
        report = write_report(log_dir)
        print(
            f"test: accuracy={results['accuracy']:.4f} macro_f1={results['macro_f1']:.4f} "
            f"on {count} {unit} -> {path}\n  report with figures: {report}"
        )

    def after_predict(self) -> None:
        writer = next(c for c in self.trainer.callbacks if isinstance(c, PredictionWriter))
        if self.trainer.is_global_zero and writer.path is not None:
            count = len(self.datamodule.splits["predict"])
            print(f"predict: {count} samples -> {writer.path}")


def lightning_main(args: list[str] | None) -> None:
    """fit / validate / test / predict through LightningCLI (`args` None: the command line)."""
    make_cli(args)


def make_cli(args: list[str] | None, run: bool = True) -> SeqClassCLI:
    """The LightningCLI of `seqclass`; with `run=False`, `args` hold no subcommand and the
    model, data and trainer are only built (for commands that drive several runs)."""
    return SeqClassCLI(
        SequenceClassifier,
        SequenceDataModule,
        args=args,
        run=run,
        seed_everything_default=0,
        trainer_defaults={
            "max_epochs": 30,
            "log_every_n_steps": 10,
            "callbacks": [PredictionWriter()],
        },
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": "Train and evaluate sequence classifiers. " + _EXTRA_HELP},
    )


def sample_data_main(args: list[str]) -> None:
    """Write a built-in sample dataset: 4-class signals (.npy), 4-class machine vibration (WAV),
    long activity recordings with interval labels (CSV), 4-class camera-motion videos, or the
    5-class camera-motion benchmark (train/test videos from disjoint photos)."""
    parser = argparse.ArgumentParser(
        prog="seqclass sample-data", description=sample_data_main.__doc__
    )
    parser.add_argument(
        "kind", choices=["signals", "machines", "activity", "videos", "camera-motion"]
    )
    parser.add_argument("out", type=Path, help="folder to create")
    parser.add_argument(
        "--per-class", type=int,
        help="samples per class (signals 40, machines 30, videos 24, camera-motion 24 train + "
        "a third as many test); recordings for activity (4)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(args)
    from pipeline import sample_data

    makers = {
        "signals": lambda n: sample_data.make_signal_dataset(ns.out, n or 40, seed=ns.seed),
        "machines": lambda n: sample_data.make_machine_dataset(ns.out, n or 30, seed=ns.seed),
        "activity": lambda n: sample_data.make_activity_recordings(ns.out, n or 4, seed=ns.seed),
        "videos": lambda n: sample_data.make_video_dataset(ns.out, n or 24, seed=ns.seed),
        "camera-motion": lambda n: sample_data.make_camera_motion_dataset(
            ns.out, n or 24, max(1, (n or 24) // 3), seed=ns.seed
        ),
    }
    root = makers[ns.kind](ns.per_class)
    print(f"sample-data: wrote {ns.kind} dataset to {root}")


def extract_main(args: list[str]) -> None:
    """Encode every video under ROOT into a [T, D] per-frame feature file under OUT: CNN
    features, optical-flow motion descriptors, or both side by side."""
    from feature_extractors.video import DEFAULT_BACKBONE, FrameSampling, MotionSettings

    parser = argparse.ArgumentParser(prog="seqclass extract", description=extract_main.__doc__)
    parser.add_argument("root", type=Path, help="video file, or folder of <class>/<video> files")
    parser.add_argument("--out", type=Path, required=True, help="feature folder to write")
    cnn = parser.add_argument_group("appearance: a pretrained CNN on every sampled frame")
    cnn.add_argument(
        "--backbone",
        default=DEFAULT_BACKBONE,
        help="torchvision model name, efficientnet_lite0 (offline), or 'none' (motion alone)",
    )
    cnn.add_argument(
        "--weights", default="DEFAULT", help="weights enum entry, or 'random' (untrained)"
    )
    cnn.add_argument("--weights-path", help="local state-dict file instead of the torch hub cache")
    cnn.add_argument(
        "--layer", help="graph node to take features from (default: pooled, before the classifier)"
    )
    cnn.add_argument(
        "--grid", type=int, default=1,
        help="pool the last feature map to GRID x GRID cells instead of globally (keeps where "
        "things are)",
    )  # fmt: skip
    cnn.add_argument(
        "--projection", type=int,
        help="keep this many channels per cell, through a fixed random orthonormal projection",
    )  # fmt: skip
    flow = parser.add_argument_group("motion: optical flow between consecutive sampled frames")
    flow.add_argument(
        "--motion", default="none", choices=["none", "dis", "farneback"],
        help="add per-cell mean flow, flow magnitude, divergence (zoom) and curl (rotation)",
    )  # fmt: skip
    flow.add_argument("--motion-grid", type=int, default=3, help="cells per side of the flow grid")
    flow.add_argument(
        "--motion-width", type=int, default=160, help="frame width the flow is computed at"
    )
    frames = parser.add_argument_group("frame sampling")
    frames.add_argument("--sampling", default="all", choices=["all", "every", "uniform", "fps"])
    frames.add_argument(
        "--sampling-value", type=float, help="k (every), N (uniform) or frames/s (fps)"
    )
    frames.add_argument("--max-frames", type=int, help="keep at most this many frames per video")
    parser.add_argument(
        "--batch-size", type=int, help="frames per CNN batch (default: 64 on CUDA, 8 on CPU)"
    )
    parser.add_argument("--num-workers", type=int, default=2, help="decoding processes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--devices", type=int, default=1,
        help="processes to shard the videos over (one per GPU with --device cuda); under "
        "torchrun, one per launched process",
    )  # fmt: skip
    ns = parser.parse_args(args)
    if ns.backbone == "none" and ns.motion == "none":
        parser.exit(2, "error: --backbone none needs --motion dis or farneback\n")
    try:
        FrameSampling(ns.sampling, ns.sampling_value, ns.max_frames)
        if ns.motion != "none":
            MotionSettings(ns.motion, ns.motion_grid, ns.motion_width)
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    run_on_ranks(_extract_on_rank, ns.devices, ns)


def _extract_on_rank(ns: argparse.Namespace) -> None:
    from feature_extractors.video import FrameSampling, MotionSettings, build_backbone
    from pipeline.extract import extract_videos

    sampling = FrameSampling(ns.sampling, ns.sampling_value, ns.max_frames)
    motion = (
        None if ns.motion == "none" else MotionSettings(ns.motion, ns.motion_grid, ns.motion_width)
    )
    try:
        backbone = None if ns.backbone == "none" else build_backbone(
            ns.backbone, ns.weights, ns.weights_path, ns.layer, ns.grid, ns.projection
        )  # fmt: skip
    except (ValueError, WeightsUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    first_rank = rank_and_world()[0] == 0
    if first_rank and backbone and motion and backbone.feature_dim > 8 * motion.dim:
        print(
            f"note: {backbone.feature_dim} appearance dimensions beside {motion.dim} motion ones: "
            "on small datasets a model can learn the scenes and ignore the motion; fewer "
            "appearance dimensions (--projection 64, a smaller --grid) balance the two streams.",
            file=sys.stderr,
        )
    report = extract_videos(
        ns.root, ns.out, backbone, sampling, motion, ns.batch_size, ns.num_workers, ns.device
    )
    if first_rank:
        streams = [f"{backbone.name} {backbone.feature_dim}-d"] if backbone else []
        streams += [f"{motion.method} motion {motion.dim}-d"] if motion else []
        print(
            f"extract: {len(report.written)} written, {len(report.skipped)} up to date, "
            f"{len(report.failed)} failed ({report.frames} frames, {' + '.join(streams)}) "
            f"-> {ns.out}"
        )
        if report.failed:
            print(f"  failures listed in {ns.out / 'failures.csv'}")
    if report.failed and not (report.written or report.skipped):
        sys.exit(1)


def classify_main(args: list[str]) -> None:
    """Classify raw videos (or sequence files) with a checkpoint from `seqclass fit`.

    The decoding, frame sampling, backbone and normalization the model was trained with are read
    from the checkpoint and applied again.
    """
    from pipeline.classify import classify
    from pipeline.reports import write_predictions, write_step_predictions

    parser = argparse.ArgumentParser(prog="seqclass classify", description=classify_main.__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="files, or folders of them")
    parser.add_argument("--checkpoint", required=True, type=Path, help=".ckpt file from fit")
    parser.add_argument("--out", type=Path, default=Path("predictions.csv"), help="CSV to write")
    parser.add_argument(
        "--batch-size", type=int, help="frames per CNN batch (default: 64 on CUDA, 8 on CPU)"
    )
    parser.add_argument("--num-workers", type=int, default=2, help="decoding processes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ns = parser.parse_args(args)
    result = classify(ns.paths, ns.checkpoint, ns.batch_size, ns.num_workers, ns.device)
    for path, reason in result.failed:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    if not result.samples:
        raise SequenceDataError(f"none of {', '.join(map(str, ns.paths))} could be read.")
    summary = (
        f"classify: {len(result.samples)} classified, {len(result.failed)} skipped -> {ns.out}"
    )
    if isinstance(result.probs, list):  # a label per time step
        write_step_predictions(
            ns.out, result.samples, result.probs, result.class_names, result.times, {}
        )
        print(summary + " (a row per time step)")
        return
    write_predictions(ns.out, result.samples, result.probs, result.class_names)
    predicted = [result.class_names[k] for k in result.probs.argmax(1).tolist()]
    labels = [s.label for s in result.samples]
    if all(label in result.class_names for label in labels):
        hits = sum(p == t for p, t in zip(predicted, labels, strict=True))
        summary += f" (accuracy {hits / len(labels):.4f} against the class folders)"
    print(summary)


def export_main(args: list[str]) -> None:
    """Save a video checkpoint as one TorchScript module: preprocessed frames -> logits."""
    from pipeline.classify import export_video_classifier, load_classifier

    parser = argparse.ArgumentParser(prog="seqclass export", description=export_main.__doc__)
    parser.add_argument("--checkpoint", required=True, type=Path, help=".ckpt file from fit")
    parser.add_argument("--out", required=True, type=Path, help="TorchScript file to write")
    ns = parser.parse_args(args)
    classifier = load_classifier(ns.checkpoint)
    module, info = export_video_classifier(classifier)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(ns.out), _extra_files={"seqclass.json": json.dumps(info)})
    size = info["frame_size"]
    print(
        f"export: {ns.out}: forward(frames [B, T, 3, {size}, {size}] float, lengths [B] int64) -> "
        f"logits [B, {len(info['class_names'])}] over {info['class_names']}; frames are "
        "preprocessed with the backbone weights' transforms. Load it with torch.jit.load; "
        "seqclass.json inside the file holds the class names and feature settings."
    )


def decompose_main(args: list[str]) -> None:
    """Decompose recordings into modes (VMD or the EMD family): .npz + PNG each, and a
    stationarity (ADF) line per channel. With --config, the recordings first go through that
    config's data.signal steps up to its vmd/emd step, whose options become the defaults.
    """
    import yaml

    from pipeline.decompose import METHODS

    parser = argparse.ArgumentParser(prog="seqclass decompose", description=decompose_main.__doc__)
    parser.add_argument("path", type=Path, help="recording, or folder of them")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.add_argument("--config", type=Path, help="YAML with data.signal (fs, steps, ...)")
    parser.add_argument("--method", choices=METHODS, help="default: vmd")
    parser.add_argument("--num-modes", type=int, help="K (default 5)")
    parser.add_argument("--alpha", type=float, help="VMD bandwidth penalty (default 1000)")
    parser.add_argument("--fs", type=float, help="sample rate of files that store none")
    parser.add_argument("--variable", help="array to read from MAT/NPZ files")
    parser.add_argument("--nan-policy", choices=["raise", "interpolate"])
    parser.add_argument("--no-plot", action="store_true", help="skip the PNGs")
    parser.add_argument(
        "--devices", type=int, default=1,
        help="processes to shard the recordings over; under torchrun, one per launched process",
    )  # fmt: skip
    ns = parser.parse_args(args)
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
    for key, value in (("fs", ns.fs), ("variable", ns.variable), ("nan_policy", ns.nan_policy)):
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
        parser.exit(2, f"error: {ns.config}: {err}\n")
    run_on_ranks(_decompose_on_rank, ns.devices, ns, preprocessing, method, num_modes, options)


def _decompose_on_rank(
    ns: argparse.Namespace,
    preprocessing: SignalPreprocessing,
    method: str,
    num_modes: int,
    options: dict,
) -> None:
    from pipeline.decompose import decompose_recordings

    try:
        rows, report = decompose_recordings(
            ns.path, ns.out, preprocessing, method, num_modes, plot=not ns.no_plot, **options
        )
    except ValueError as err:
        raise SequenceDataError(str(err)) from None
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
    print(f"decompose: {method.upper()} K={num_modes}: {len(report.written)} written, "
          f"{len(report.skipped)} up to date, {len(report.failed)} skipped; {len(rows)} channels "
          f"-> {ns.out} (.npz{'' if ns.no_plot else ' and .png'} per recording, decompose.csv)")  # fmt: skip


def cv_main(args: list[str]) -> None:
    """Stratified k-fold cross-validation: one model per fold, each validated on its held-out
    fold; per-fold metrics, their mean and standard deviation in OUT/cv.json and OUT/cv.png.
    Other options (--config, --model.*, --data.*, --trainer.*) are those of `seqclass fit`."""
    from pipeline.cross_validation import cross_validate

    parser = argparse.ArgumentParser(prog="seqclass cv", description=cv_main.__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/cv"), help="folder to write")
    ns, fit_args = parser.parse_known_args(args)
    if ns.folds < 2:
        parser.exit(2, "error: --folds must be at least 2.\n")
    summary, path = cross_validate(fit_args, ns.folds, ns.out)
    print(f"cv: {ns.folds} folds -> {path}")
    for metric, mean in summary["mean"].items():
        print(f"  {metric}: {mean:.4f} ± {summary['std'][metric]:.4f}")


def tune_main(args: list[str]) -> None:
    """Hyper-parameter search with Optuna (TPE, median pruning) over the options of a YAML
    search space; the study is kept in OUT/study.db and resumes. Writes OUT/best.yaml (run it
    with `seqclass fit --config OUT/best.yaml`), OUT/trials.csv and OUT/tune.png. Other options
    (--config, --model.*, --data.*, --trainer.*) are those of `seqclass fit`."""
    from pipeline.tuning import read_space, tune

    parser = argparse.ArgumentParser(prog="seqclass tune", description=tune_main.__doc__)
    parser.add_argument("--trials", type=int, default=20, help="finished trials the study holds")
    parser.add_argument("--space", type=Path, default=Path("configs/tune/space.yaml"))
    parser.add_argument("--out", type=Path, default=Path("runs/tune"), help="folder to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler")
    ns, fit_args = parser.parse_known_args(args)
    if not ns.space.is_file():
        parser.exit(2, f"error: search space {ns.space} not found; see configs/tune/space.yaml.\n")
    study, best_yaml = tune(fit_args, read_space(ns.space), ns.trials, ns.out, ns.seed)
    best = study.best_trial
    print(f"tune: {len(study.trials)} trials in {ns.out / 'study.db'}; best trial {best.number}: "
          f"{best.value:.4f} with {best.params}\n  ready to run: seqclass fit --config {best_yaml}")  # fmt: skip


def explain_main(args: list[str]) -> None:
    """Show which time steps made a checkpoint choose its class for each input (raw videos,
    recordings or sequence files): integrated gradients over time and features, plus attention
    weights with attention pooling. Writes a PNG and .npz per input and OUT/explain.csv."""
    from pipeline.explain import explain

    parser = argparse.ArgumentParser(prog="seqclass explain", description=explain_main.__doc__)
    parser.add_argument("checkpoint", type=Path, help=".ckpt file from fit")
    parser.add_argument("paths", nargs="+", type=Path, help="files, or folders of them")
    parser.add_argument("--out", type=Path, default=Path("explain"), help="folder to write")
    parser.add_argument("--target", help="class to explain (default: the predicted one)")
    parser.add_argument("--steps", type=int, default=32, help="integrated-gradient path steps")
    parser.add_argument("--num-workers", type=int, default=2, help="video decoding processes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ns = parser.parse_args(args)
    results, failed = explain(
        ns.paths, ns.checkpoint, ns.out, ns.target, ns.steps, ns.num_workers, ns.device
    )
    for path, reason in failed:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    if not results:
        raise SequenceDataError(f"none of {', '.join(map(str, ns.paths))} could be read.")
    print(f"explain: {len(results)} explained, {len(failed)} skipped -> {ns.out} "
          "(a .png and .npz per input, explain.csv)")  # fmt: skip


def report_main(args: list[str]) -> None:
    """Redraw a test run's figures (confusion matrix, per-class scores, training curves) and
    write its report.md: metrics, data counts, misclassified samples and configuration."""
    parser = argparse.ArgumentParser(prog="seqclass report", description=report_main.__doc__)
    parser.add_argument("run_dir", type=Path, help="run folder of `seqclass test` (version_N)")
    ns = parser.parse_args(args)
    print(f"report: {write_report(ns.run_dir)}")


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "classify": classify_main,
    "cv": cv_main,
    "decompose": decompose_main,
    "explain": explain_main,
    "export": export_main,
    "extract": extract_main,
    "report": report_main,
    "sample-data": sample_data_main,
    "tune": tune_main,
}
_EXTRA_HELP = "Data commands: " + ", ".join(f"`seqclass {c} -h`" for c in COMMANDS) + "."


def _quiet_library_noise() -> None:
    """Hide messages from dependencies that say nothing about the user's run."""
    warnings.filterwarnings("ignore", message=".*treespec.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `seqclass` command."""
    _quiet_library_noise()
    args = sys.argv[1:] if argv is None else list(argv)
    command = COMMANDS.get(args[0]) if args else None
    try:
        # LightningCLI reads the command line itself (as do the processes DDP launches)
        command(args[1:]) if command else lightning_main(None if argv is None else args)
    except (SequenceDataError, WeightsUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
