"""The model's steps on a CUDA device, checked on any machine: under FakeTensorMode tensors have
a shape, a dtype and a device but no values, so a step runs on "cuda" without a GPU. An op that
mixes devices fails there as it would on a GPU, and so does anything that reads values on the
host (`.item()`, `.tolist()`, selecting with a mask): on a GPU each of those waits for the
device, which the training step must never do."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torchmetrics import Accuracy, F1Score

from pipeline.training.lit_module import SequenceClassifier
from pipeline.training.metrics import LabelledAccuracy, LabelledMacroF1, WeightedMean


def _fake_cuda_works() -> bool:
    """Whether this torch makes fake CUDA tensors without a GPU: it needs torch's CUDA build,
    and older ones (2.4) a CUDA driver as well."""
    try:
        with FakeTensorMode(allow_non_fake_inputs=True):
            torch.zeros(1).to("cuda")  # a real tensor moved, as a model is
    except (RuntimeError, AssertionError):
        return False
    return True


needs_fake_cuda = pytest.mark.skipif(not _fake_cuda_works(), reason="no fake CUDA in this torch")
pytestmark = [
    pytest.mark.filterwarnings("ignore:Accessing the data pointer of FakeTensor"),  # torch's RNN
    pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`"),  # no Trainer here
]
FUSION = {"kind": "fusion", "streams": [
    {"name": "camera", "dim": 40, "settings": {"kind": "video"}},
    {"name": "vibration", "dim": 4, "settings": {"kind": "signal"}},
]}  # fmt: skip
MODELS = {  # the default model on each kind of data, and the options that change its step
    "one stream": {"input_size": 3},
    "fused streams": {"input_size": 44, "feature_settings": FUSION},
    "a label per step": {"input_size": 3, "pooling": "none"},
    "heads as an ensemble": {"input_size": 3, "heads": "ensemble"},
}
BATCH, STEPS = 4, 60


def on_fake_cuda(options: dict) -> tuple[SequenceClassifier, FakeTensorMode, dict]:
    """A model built on the CPU, then moved to a fake CUDA device with a batch as `fit` gives
    it there (the kernel features kept from the first epoch)."""
    torch.manual_seed(0)
    model = SequenceClassifier(class_names=["a", "b", "c"], max_length=STEPS, **options)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with mode:
        model = model.to("cuda")
        per_step = model.per_step
        batch = {
            "x": torch.randn(BATCH, STEPS, options["input_size"], device="cuda"),
            "lengths": torch.tensor([STEPS, 45, 20, 3], device="cuda"),
            "y": torch.randint(
                -1 if per_step else 0, 3, (BATCH, STEPS) if per_step else (BATCH,), device="cuda"
            ),
            "index": torch.arange(BATCH, device="cuda"),
        }
        if model.net.kernel_head is not None:
            features = model.net.kernel_head.num_features
            batch.update(kernel_pooled=torch.rand(BATCH, features, device="cuda") * STEPS,
                         kernel_rows=[], kernel_indices=[])  # fmt: skip
    return model, mode, batch


@needs_fake_cuda
@pytest.mark.parametrize("options", MODELS.values(), ids=MODELS.keys())
def test_training_and_validation_steps_stay_on_the_gpu_and_never_wait_for_it(
    options: dict,
) -> None:
    model, mode, batch = on_fake_cuda(options)
    # cuDNN's recurrent kernels ask the driver for their workspace: off here, PyTorch's own run
    with mode, torch.backends.cudnn.flags(enabled=False):
        loss = model.train().training_step(batch, 0)
        assert loss.device.type == "cuda" and loss.shape == ()
        model.eval().validation_step(batch, 0)
        metrics = (model.train_acc, model.train_mean_loss, model.val_acc, model.val_f1,
                   model.val_mean_loss)  # fmt: skip
        for metric in metrics:
            assert {state.device.type for state in metric.metric_state.values()} == {"cuda"}


@needs_fake_cuda
@pytest.mark.parametrize("options", MODELS.values(), ids=MODELS.keys())
def test_predictions_are_made_on_the_gpu(options: dict) -> None:
    model, mode, batch = on_fake_cuda(options)
    with mode, torch.backends.cudnn.flags(enabled=False):
        output = model.eval().predict_step(batch, 0)
        classes = (BATCH, STEPS, 3) if model.per_step else (BATCH, 3)
        assert output["probs"].device.type == "cuda" and output["probs"].shape == classes


@needs_fake_cuda
def test_a_host_sync_in_a_step_is_caught() -> None:
    """The check can fail: selecting the labelled steps with a mask (as `test` does, where the
    wait is needed anyway), or torchmetrics' macro-F1, waits for the device."""
    model, mode, batch = on_fake_cuda(MODELS["a label per step"])
    with mode, torch.backends.cudnn.flags(enabled=False):
        heads, y = model.train().scored(batch, "train")
        with pytest.raises(RuntimeError):
            model.labelled(heads[0], y)
        torchmetrics_f1 = F1Score(task="multiclass", num_classes=3, average="macro",
                                  validate_args=False).to("cuda")  # fmt: skip
        with pytest.raises(RuntimeError):
            torchmetrics_f1.update(heads[0], y.clamp_min(0))


def test_a_step_labelled_per_step_scores_its_labelled_steps_alone() -> None:
    """Targets of -1 (padding, unlabelled steps) stay in the batch but out of the loss and the
    accuracy: both equal those of the labelled steps selected with a mask."""
    torch.manual_seed(0)
    model = SequenceClassifier(class_names=["a", "b", "c"], max_length=STEPS, input_size=3,
                               pooling="none").eval()  # fmt: skip
    x, lengths = torch.randn(BATCH, STEPS, 3), torch.tensor([STEPS, 45, 20, 3])
    y = torch.randint(0, 3, (BATCH, STEPS))
    y[torch.arange(STEPS) >= lengths[:, None]] = -1
    y[:, 10:15] = -1
    loss = model.training_step({"x": x, "lengths": lengths, "y": y, "index": torch.arange(4)}, 0)
    keep = y >= 0
    logits = model(x, lengths)[keep]
    expected = torch.nn.functional.cross_entropy(logits, y[keep], label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(model.train_mean_loss.compute(), expected)
    accuracy = (logits.argmax(-1) == y[keep]).float().mean()
    torch.testing.assert_close(model.train_acc.compute(), accuracy)


def test_a_batch_with_nothing_labelled_leaves_the_epoch_means_as_they_are() -> None:
    mean = WeightedMean()
    mean.update(torch.tensor(2.0), 3)
    mean.update(torch.tensor(float("nan")), 0)  # the loss of no labelled step
    mean.update(torch.tensor([4.0, 1.0]), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(mean.compute(), torch.tensor(2.5))


def test_labelled_accuracy_and_macro_f1_are_torchmetrics_figures_over_the_labelled_items() -> None:
    """Items with target -1 count for nothing; a class that is neither a target nor predicted
    stays out of the macro mean, as in torchmetrics."""
    torch.manual_seed(0)
    logits, y = torch.randn(200, 5), torch.randint(-1, 4, (200,))  # class 4 is never a target
    logits[:, 4] = -10  # ... nor predicted
    accuracy, macro_f1 = LabelledAccuracy(5), LabelledMacroF1(5)
    for part in range(4):  # in batches, as an epoch
        rows = slice(50 * part, 50 * (part + 1))
        accuracy.update(logits[rows], y[rows])
        macro_f1.update(logits[rows], y[rows])
    keep = y >= 0
    task = {"task": "multiclass", "num_classes": 5}
    torch.testing.assert_close(accuracy.compute(), Accuracy(**task)(logits[keep], y[keep]))
    expected = F1Score(**task, average="macro")(logits[keep], y[keep])
    torch.testing.assert_close(macro_f1.compute(), expected)
    assert 0.1 < float(expected) < 0.5  # random logits: neither 0 nor 1
