"""State dicts of the earlier network layout (one module holding the encoder's layers, late
fusion's branches and the kernel features) load into today's and give the same logits.

`tests/data/sequence_net_v1.pt` holds, per network, the options, a state dict written by that
layout, an input batch and the logits that layout computed for it."""

from pathlib import Path

import pytest
import torch

from pipeline.models.config import NetConfig
from pipeline.models.sequence_net import SequenceNet

OLD = torch.load(Path(__file__).parent / "data" / "sequence_net_v1.pt", weights_only=True)


def _config(old: dict) -> NetConfig:
    """The network's options; Hydra's features came after these were written."""
    return NetConfig(**{"kernel_hydra": False, **old["config"]})


@pytest.mark.parametrize("name", sorted(OLD))
def test_an_old_state_dict_loads_and_gives_its_logits(name: str) -> None:
    old = OLD[name]
    net = SequenceNet(old["input_size"], 3, _config(old), max_length=40,
                      streams=old["streams"] or None)  # fmt: skip
    net.load_state_dict(old["state_dict"])  # strict: every key placed, none left over
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(old["x"], old["lengths"]), old["logits"])


@pytest.mark.parametrize("hydra", [False, True])
def test_a_state_dict_of_today_loads_unchanged(hydra: bool) -> None:
    """No key of today's layout (the kernel head's parts included) is taken for an old one."""
    old = OLD["late_fusion"]
    config = {**old["config"], "kernel_hydra": hydra, "kernel_difference": hydra}
    make = lambda: SequenceNet(5, 3, NetConfig(**config), max_length=40, streams=[3, 2])  # noqa: E731
    net, copy = make(), make()
    if hydra:
        net.fit_kernel_features(torch.randn(6, 40, 5), torch.full((6,), 40))
    else:
        net.load_state_dict(old["state_dict"])
    copy.load_state_dict(net.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 copy.state_dict().values(), strict=True))  # fmt: skip
