from pathlib import Path

import numpy as np

from feature_extractors.video import count_frames
from pipeline.cli import main
from pipeline.prepare import sample_data
from pipeline.prepare.sample_data import SCENES, VIDEO_CLASSES, camera_path


def test_camera_paths_move_as_their_class_says() -> None:
    rng = np.random.default_rng(0)
    x, side = 0, 2
    zoom_in, zoom_out = camera_path("zoom_in", 10, rng), camera_path("zoom_out", 10, rng)
    assert np.all(np.diff(zoom_in[:, side]) < 0) and np.all(np.diff(zoom_out[:, side]) > 0)
    left, right = camera_path("pan_left", 10, rng), camera_path("pan_right", 10, rng)
    assert np.all(np.diff(left[:, x]) < 0) and np.all(np.diff(right[:, x]) > 0)
    assert np.ptp(left[:, side]) == 0 and np.ptp(zoom_in[:, x]) == 0
    assert np.ptp(camera_path("static", 10, rng), axis=0).max() == 0


def test_sample_videos_are_decodable_photo_clips(tmp_path: Path) -> None:
    main(["sample-data", "videos", str(tmp_path / "v"), "--per-class", "2"])
    videos = sorted((tmp_path / "v").rglob("*.avi"))
    assert sorted({p.parent.name for p in videos}) == sorted(VIDEO_CLASSES) and len(videos) == 8
    assert all(16 <= count_frames(p) <= 32 for p in videos)


def test_the_scenes_set_films_train_and_test_clips_from_different_halves(
    tmp_path: Path, monkeypatch
) -> None:
    filmed = {}  # video -> the part of the photo its camera moved over
    film = sample_data.film

    def recording_film(path, photo, windows, **kwargs):
        filmed[path] = photo
        film(path, photo, windows, **kwargs)

    monkeypatch.setattr(sample_data, "film", recording_film)
    main(["sample-data", "scenes", str(tmp_path / "s"), "--per-class", "3"])  # 3 train, 1 test
    for split, count in (("train", 3), ("test", 1)):
        videos = sorted((tmp_path / "s" / split).rglob("*.avi"))
        assert sorted({p.parent.name for p in videos}) == sorted(SCENES)
        assert len(videos) == 5 * count and all(16 <= count_frames(p) <= 32 for p in videos)
    for path, part in filmed.items():
        photo = sample_data._photo(path.parent.name)
        half = photo.shape[0] // 2
        expected = photo[:half] if path.parts[-3] == "train" else photo[half:]
        assert np.array_equal(part, expected), path
