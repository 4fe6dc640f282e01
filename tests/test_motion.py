import cv2
import numpy as np
import pytest
from skimage import data

from feature_extractors.video import MotionSettings, MotionStream

PHOTO = data.astronaut()
SIZE = (320, 240)
DX, DY = 0, 4  # 2x2 grid: dx of the 4 cells, then dy of the 4 cells, then magnitudes
DIVERGENCE, CURL = -2, -1


def framed(image: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    """A 4:3 view of `image` centred at (cx, cy), `side` pixels high, resized to SIZE."""
    half_h, half_w = side / 2, side * 2 / 3
    box = image[int(cy - half_h) : int(cy + half_h), int(cx - half_w) : int(cx + half_w)]
    return cv2.resize(box, SIZE, interpolation=cv2.INTER_AREA)


def descriptor(frames: list[np.ndarray], method: str) -> np.ndarray:
    return MotionStream(MotionSettings(method, grid=2))(np.stack(frames))[1]


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_descriptors_measure_pan_zoom_rotation_and_stillness(method: str) -> None:
    side = 200
    width = side * 4 / 3
    pan = descriptor([framed(PHOTO, 250, 256, side), framed(PHOTO, 258, 256, side)], method)
    # the camera moves 8 px right: the picture moves 8 px left, in frame widths
    np.testing.assert_allclose(pan[DX : DX + 4].mean(), -8 / width, rtol=0.1)
    assert np.all(pan[DX : DX + 4] < -0.5 * 8 / width)  # every cell: flat sky is harder
    assert np.abs(pan[DY : DY + 4]).max() < 0.003 and abs(pan[DIVERGENCE]) < 0.01

    zoom = descriptor([framed(PHOTO, 256, 256, 300), framed(PHOTO, 256, 256, 300 * 0.95)], method)
    left, right = zoom[[DX, DX + 2]], zoom[[DX + 1, DX + 3]]
    assert np.all(left < -0.005) and np.all(right > 0.005)  # things spread outwards
    np.testing.assert_allclose(zoom[DIVERGENCE], 2 * (1 / 0.95 - 1), rtol=0.2)
    zoom_out = descriptor([framed(PHOTO, 256, 256, 285), framed(PHOTO, 256, 256, 300)], method)
    assert zoom_out[DIVERGENCE] < -0.05

    theta = np.deg2rad(3.0)  # OpenCV: positive angles turn the picture anticlockwise on screen
    turned = cv2.warpAffine(PHOTO, cv2.getRotationMatrix2D((256, 256), 3.0, 1.0), (512, 512))
    turn = descriptor([framed(PHOTO, 256, 256, 200), framed(turned, 256, 256, 200)], method)
    np.testing.assert_allclose(turn[CURL], -2 * theta, rtol=0.2)
    assert abs(turn[DIVERGENCE]) < 0.01

    still = descriptor([framed(PHOTO, 256, 256, 200)] * 2, method)
    assert np.abs(still).max() < 1e-3


def test_motion_stream_is_the_same_in_chunks_and_starts_at_zero() -> None:
    frames = np.stack([framed(PHOTO, 220 + 6 * t, 256, 200) for t in range(7)])
    settings = MotionSettings("dis", grid=3, width=96)
    whole = MotionStream(settings)(frames)
    stream = MotionStream(settings)
    chunked = np.concatenate([stream(frames[i : i + 3]) for i in range(0, 7, 3)])
    assert whole.shape == (7, settings.dim) == (7, 3 * 9 + 2) and whole.dtype == np.float32
    np.testing.assert_array_equal(whole, chunked)
    assert not whole[0].any() and np.all(whole[1:, :9] < 0)  # first frame: nothing before it


def test_bad_motion_settings_say_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="dis or farneback"):
        MotionSettings("lucas-kanade")
    with pytest.raises(ValueError, match="grid must be >= 1"):
        MotionSettings(grid=0)
