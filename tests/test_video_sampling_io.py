from pathlib import Path

import numpy as np
import pytest

from feature_extractors.video import (
    FrameSampling,
    VideoReadError,
    count_frames,
    iter_frame_chunks,
    uniform_indices,
)
from feature_extractors.video.sampling import FrameSelector

from conftest import write_video


def kept(sampling: FrameSampling, times: list[float], num_frames: int | None = None) -> list[int]:
    selector = FrameSelector(sampling, num_frames)
    return [i for i, t in enumerate(times) if selector.keep(i, t)]


def test_uniform_indices_spread_evenly() -> None:
    assert uniform_indices(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert uniform_indices(3, 8).tolist() == [0, 1, 2]  # never more frames than exist


def test_modes_select_the_expected_frames() -> None:
    times = [i / 30 for i in range(30)]  # 1 s at 30 fps
    assert kept(FrameSampling("all"), times) == list(range(30))
    assert kept(FrameSampling("every", 7), times) == [0, 7, 14, 21, 28]
    assert kept(FrameSampling("uniform", 3), times, num_frames=30) == [5, 15, 25]
    assert kept(FrameSampling("fps", 5), times) == [0, 6, 12, 18, 24]
    assert kept(FrameSampling("every", 2, max_frames=3), times) == [0, 2, 4]


def test_fps_sampling_follows_timestamps_of_variable_frame_rate_video() -> None:
    # 10 frames in the first second, then 2 frames per second: sampling at 2 fps is even in time
    times = [i / 10 for i in range(10)] + [1.0, 1.5, 2.0, 2.5]
    picked = kept(FrameSampling("fps", 2), times)
    assert [times[i] for i in picked] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_bad_sampling_options_raise() -> None:
    with pytest.raises(ValueError, match="needs a positive value"):
        FrameSampling("every")
    with pytest.raises(ValueError, match="unknown sampling mode"):
        FrameSampling("sometimes", 1)


def test_decoding_streams_bounded_chunks_of_sampled_frames(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", frames=23)
    assert count_frames(video) == 23
    chunks = list(iter_frame_chunks(video, FrameSampling("every", 2), chunk_size=5))
    assert [len(f) for f, _ in chunks] == [5, 5, 2]
    indices = np.concatenate([i for _, i in chunks])
    assert indices.tolist() == list(range(0, 23, 2))
    frames = chunks[0][0]
    assert frames.shape == (5, 48, 64, 3) and frames.dtype == np.uint8
    assert frames[0, :, :8].mean() < frames[0, :, -8:].mean()  # RGB gradient kept left to right
    uniform = np.concatenate([i for _, i in iter_frame_chunks(video, FrameSampling("uniform", 4))])
    assert uniform.tolist() == uniform_indices(23, 4).tolist()


@pytest.mark.parametrize(
    ("content", "reason"), [(b"", "zero-byte"), (b"not a video at all" * 10, "cannot open")]
)
def test_unreadable_videos_raise_with_the_reason(tmp_path: Path, content, reason) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoReadError, match=reason):
        list(iter_frame_chunks(path, FrameSampling()))
