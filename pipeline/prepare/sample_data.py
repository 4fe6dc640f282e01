"""Small built-in datasets for the demo and the tests, generated on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIGNAL_CLASSES = ("low", "high", "rising", "falling")


def make_signal_dataset(
    root: str | Path,
    samples_per_class: int = 40,
    *,
    fs: float = 100.0,
    length_range: tuple[int, int] = (120, 240),
    seed: int = 0,
) -> Path:
    """Write `ROOT/<class>/<i>.npy` 3-channel recordings of variable length.

    Classes differ in frequency content (``low`` 3 Hz vs ``high`` 12 Hz) and in temporal order
    (``rising``: 3 Hz then 12 Hz; ``falling``: the same two tones the other way round), so a
    model must track both spectrum and time to separate all four.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label in SIGNAL_CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(samples_per_class):
            steps = int(rng.integers(*length_range, endpoint=True))
            t = np.arange(steps) / fs
            switch = int(steps * rng.uniform(0.35, 0.65))
            freq = {
                "low": np.full(steps, 3.0),
                "high": np.full(steps, 12.0),
                "rising": np.where(np.arange(steps) < switch, 3.0, 12.0),
                "falling": np.where(np.arange(steps) < switch, 12.0, 3.0),
            }[label] * rng.uniform(0.9, 1.1)
            phase = 2 * np.pi * np.cumsum(freq) / fs + rng.uniform(0, 2 * np.pi)
            amplitude = rng.uniform(0.5, 2.0)
            channels = [
                amplitude * np.sin(phase),
                amplitude * np.cos(phase + rng.uniform(-0.3, 0.3)),
                0.2 * t + rng.normal(0, 0.3, steps),  # slow drift
            ]
            x = np.stack(channels, axis=1) + rng.normal(0, 0.2, (steps, 3))
            np.save(root / label / f"{label}_{i:03d}.npy", x.astype(np.float32))
    return root


MACHINE_CLASSES = ("healthy", "imbalance", "misalignment", "bearing_fault")


def make_machine_dataset(
    root: str | Path,
    recordings_per_class: int = 30,
    *,
    fs: int = 2000,
    seconds: tuple[float, float] = (1.0, 1.5),
    seed: int = 0,
) -> Path:
    """Write `ROOT/<class>/<i>.wav`: 2-axis vibration of a rotating machine, float32 WAV.

    A shaft turns at 15-22 Hz. ``imbalance`` raises the once-per-turn tone, ``misalignment`` the
    twice-per-turn tone, ``bearing_fault`` adds short impacts ringing a 300 Hz resonance at 3.6x
    the shaft rate. Every recording also carries 50 Hz mains hum, a slow drift and noise, which
    the preprocessing chain (`configs/signal_vmd.yaml`) removes.
    """
    import scipy.io.wavfile

    root = Path(root)
    rng = np.random.default_rng(seed)
    for label in MACHINE_CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(recordings_per_class):
            t = np.arange(int(fs * rng.uniform(*seconds))) / fs
            wav = vibration(label, t, rng)
            scipy.io.wavfile.write(root / label / f"{label}_{i:03d}.wav", fs, wav)
    return root


def vibration(label: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`[len(t), 2]` float32 vibration of a machine in state `label` (`MACHINE_CLASSES`)."""
    shaft = rng.uniform(15, 22)
    one, two = {"imbalance": (1.0, 0.2), "misalignment": (0.3, 0.9)}.get(label, (0.3, 0.1))
    axes = []
    for axis in range(2):
        phase = rng.uniform(0, 2 * np.pi) + axis * np.pi / 2
        x = one * np.sin(2 * np.pi * shaft * t + phase)
        x += two * np.sin(4 * np.pi * shaft * t + 2 * phase)
        if label == "bearing_fault":
            since_impact = (t * 3.6 * shaft) % 1.0 / (3.6 * shaft)
            x += 1.5 * np.exp(-since_impact * 300) * np.sin(2 * np.pi * 300 * since_impact)
        x += 0.5 * np.sin(2 * np.pi * 50 * t + rng.uniform(0, 2 * np.pi))  # mains hum
        x += rng.uniform(-1, 1) * t + rng.normal(0, 0.15, len(t))  # drift and noise
        axes.append(x)
    return (np.stack(axes, axis=1) / 4).astype(np.float32)


ACTIVITY_CLASSES = ("idle", "walk", "run")


def make_activity_recordings(
    root: str | Path, recordings: int = 4, seconds: float = 90.0, *, fs: float = 50.0, seed: int = 0
) -> Path:
    """Write long 3-axis accelerometer recordings `ROOT/subject_<i>.csv` and `ROOT/labels.csv`.

    Each recording alternates idle, walking (about 2 steps/s) and running (about 3 steps/s,
    harder impacts) in bouts of 4-12 s; ``labels.csv`` lists the bouts as
    ``file,start,end,label`` intervals in seconds. A second between bouts is left unlabelled.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = ["file,start,end,label"]
    for i in range(recordings):
        t = np.arange(int(seconds * fs)) / fs
        x = rng.normal(0, 0.05, (len(t), 3)) + [0.0, 0.0, 1.0]  # gravity on z
        start = 0.0
        while start < seconds - 4:
            label = ACTIVITY_CLASSES[rng.integers(len(ACTIVITY_CLASSES))]
            end = min(seconds, start + rng.uniform(4, 12))
            bout = (t >= start) & (t < end)
            if label != "idle":
                cadence = rng.uniform(1.7, 2.2) if label == "walk" else rng.uniform(2.6, 3.2)
                gain = 1.0 if label == "walk" else 2.5
                phase = 2 * np.pi * cadence * t[bout]
                x[bout, 0] += gain * 0.3 * np.sin(phase / 2)  # sway: once per stride
                x[bout, 2] += gain * (0.5 * np.sin(phase) + 0.2 * np.sin(2 * phase) ** 4)
            rows.append(f"subject_{i}.csv,{start:.2f},{end:.2f},{label}")
            start = end + 1.0
        np.savetxt(root / f"subject_{i}.csv", x, delimiter=",", header="x,y,z", comments="",
                   fmt="%.5f")  # fmt: skip
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


VIDEO_CLASSES = ("zoom_in", "zoom_out", "pan_left", "pan_right")
CAMERA_MOTIONS = ("static", *VIDEO_CLASSES)
_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
# The camera-motion benchmark films disjoint photos for training and testing.
_TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
                 "retina", "camera", "brick", "grass", "moon", "coins", "page")  # fmt: skip
_TEST_PHOTOS = ("chelsea", "stereo_motorcycle", "colorwheel", "gravel", "clock", "cell", "text")


def camera_path(motion: str, steps: int, rng: np.random.Generator) -> np.ndarray:
    """`[steps, 3]` crop windows `(centre x, centre y, side)`, in units of the photo's short side."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    near, far = rng.uniform(0.35, 0.5), rng.uniform(0.8, 1.0)
    if motion in ("zoom_in", "zoom_out"):
        side = far + (near - far) * t if motion == "zoom_in" else near + (far - near) * t
        centre = rng.uniform(0.45, 0.55, size=2)[None, :].repeat(steps, 0)
        return np.concatenate([centre, side], axis=1)
    if motion in ("pan_left", "pan_right"):
        side = np.full_like(t, near)
        span = rng.uniform(0.3, 0.5)
        x = 0.5 - span / 2 + span * (t if motion == "pan_right" else 1 - t)
        y = np.full_like(t, rng.uniform(0.4, 0.6))
        return np.concatenate([x, y, side], axis=1)
    if motion == "static":
        window = [*rng.uniform(0.4, 0.6, size=2), rng.uniform(near, far)]
        return np.tile(window, (steps, 1))
    raise ValueError(f"unknown camera motion {motion!r}; choose one of {CAMERA_MOTIONS}")


def make_video_dataset(
    root: str | Path,
    videos_per_class: int = 24,
    *,
    frame_range: tuple[int, int] = (16, 32),
    size: tuple[int, int] = (128, 96),
    fps: float = 15.0,
    seed: int = 0,
    classes: tuple[str, ...] = VIDEO_CLASSES,
    photos: tuple[str, ...] = _PHOTOS,
) -> Path:
    """Write `ROOT/<class>/<i>.avi`: real photos (scikit-image's samples) filmed by a moving camera.

    The class is the camera motion (zoom in/out, pan left/right; static too if asked); the photo,
    speed, framing and length vary per video, so the label is in how the frames change, not in
    any single frame.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    images = [_photo(name) for name in photos]
    for label in classes:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(videos_per_class):
            photo = images[rng.integers(len(images))]
            steps = int(rng.integers(*frame_range, endpoint=True))
            film(
                root / label / f"{label}_{i:03d}.avi",
                photo,
                camera_path(label, steps, rng),
                size=size,
                fps=fps,
            )
    return root


def film(
    path: Path, photo: np.ndarray, windows: np.ndarray, *, size: tuple[int, int], fps: float
) -> None:
    """Write an MJPG video of `photo` seen through the crop `windows` of `camera_path`."""
    import cv2

    short = min(photo.shape[:2])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for cx, cy, side in windows * short:
        aspect = size[0] / size[1]
        half_w, half_h = side * aspect / 2, side / 2
        cx = np.clip(cx, half_w, photo.shape[1] - half_w)
        cy = np.clip(cy, half_h, photo.shape[0] - half_h)
        box = photo[int(cy - half_h) : int(cy + half_h), int(cx - half_w) : int(cx + half_w)]
        frame = cv2.resize(box, size, interpolation=cv2.INTER_AREA)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def make_camera_motion_dataset(
    root: str | Path, train_per_class: int = 24, test_per_class: int = 8, *, seed: int = 0
) -> Path:
    """Write `ROOT/train|test/<class>/<i>.avi`: five camera motions (static, zoom in/out, pan
    left/right) over scikit-image photos, with test videos filmed from photos never seen in
    training, so that a model must recognise the motion, not the scene."""
    root = Path(root)
    for split, count, photos, offset in (
        ("train", train_per_class, _TRAIN_PHOTOS, 0),
        ("test", test_per_class, _TEST_PHOTOS, 1),
    ):
        make_video_dataset(root / split, count, seed=seed * 2 + offset, classes=CAMERA_MOTIONS,
                           photos=photos)  # fmt: skip
    return root


# Scenes benchmark: the class is the scene, whatever the camera does; the test clips are filmed
# over the half of each scene that no training clip saw.
SCENES = ("brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry")


def make_scene_dataset(
    root: str | Path, train_per_class: int = 24, test_per_class: int = 8, *, seed: int = 0
) -> Path:
    """Write `ROOT/train|test/<scene>/<i>.avi`: five scikit-image scenes (brick, grass, gravel,
    a deep field of galaxies, stained tissue), each clip filmed by a camera that stays still,
    pans or zooms at random. Training clips film the top half of each scene and test clips the
    bottom half, so the test frames are never seen in training and the label is in what the
    scene looks like, not in how the camera moves."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label in SCENES:
        photo = _photo(label)
        half = photo.shape[0] // 2
        for split, count, part in (("train", train_per_class, photo[:half]),
                                   ("test", test_per_class, photo[half:])):  # fmt: skip
            (root / split / label).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                motion = CAMERA_MOTIONS[rng.integers(len(CAMERA_MOTIONS))]
                steps = int(rng.integers(16, 32, endpoint=True))
                film(root / split / label / f"{label}_{i:03d}.avi", part,
                     camera_path(motion, steps, rng), size=(128, 96), fps=15.0)  # fmt: skip
    return root


FUSION_MOTIONS = ("pan_left", "pan_right")
FUSION_STATES = ("healthy", "bearing_fault")
FUSION_CLASSES = tuple(f"{m}-{s}" for m in FUSION_MOTIONS for s in FUSION_STATES)


def make_fusion_dataset(
    root: str | Path,
    samples_per_class: int = 24,
    *,
    fps: float = 12.0,
    fs: int = 2000,
    seed: int = 0,
) -> Path:
    """Write `ROOT/<class>/<sample>/camera.avi` and `vibration.wav`: a camera panning left or
    right over a machine (a scikit-image photo) filmed while its 2-axis vibration is recorded,
    healthy or with a bearing fault (as `make_machine_dataset`), both 2-3 s from one start.

    The four classes are motion x state, so that neither stream alone can tell more than half
    of them apart: the video knows the pan, the recording the fault.
    """
    import scipy.io.wavfile

    root = Path(root)
    rng = np.random.default_rng(seed)
    images = [_photo(name) for name in _PHOTOS]
    for label in FUSION_CLASSES:
        motion, state = label.split("-")
        for i in range(samples_per_class):
            folder = root / label / f"{label}_{i:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            steps = int(rng.integers(24, 36, endpoint=True))
            photo = images[rng.integers(len(images))]
            film(
                folder / "camera.avi",
                photo,
                camera_path(motion, steps, rng),
                size=(128, 96),
                fps=fps,
            )
            t = np.arange(int(fs * steps / fps)) / fs
            scipy.io.wavfile.write(folder / "vibration.wav", fs, vibration(state, t, rng))
    return root


def _photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as RGB uint8."""
    try:
        from skimage import data
    except ImportError:
        raise ImportError(
            "the sample videos are made from scikit-image's photos: pip install scikit-image"
        ) from None
    image = getattr(data, name)()
    image = image[0] if isinstance(image, tuple) else image  # stereo pairs: the left view
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
