"""The feature-kind registry: every kind by name, and a new kind added in one place."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.core.errors import UserError
from pipeline.data.cache import ExtractionReport, feature_path
from pipeline.data.discovery import discover_unlabelled
from pipeline.data.sequence_files import save_sequence, write_feature_settings
from pipeline.prepare import kinds
from pipeline.prepare.encodings import StreamEncoding


def test_each_kind_is_found_by_the_name_its_settings_give() -> None:
    assert kinds.list_kinds() == ["fusion", "sequences", "signal", "video"]
    assert kinds.feature_kind(None).name == "sequences"  # files made elsewhere
    for name in ("fusion", "signal", "video"):
        assert kinds.feature_kind({"kind": name}).name == name
    with pytest.raises(UserError, match="kind 'audio': this version knows fusion, sequences"):
        kinds.feature_kind({"kind": "audio"})


def test_a_new_kind_is_one_registered_class(tmp_path: Path, monkeypatch, capsys) -> None:
    """A kind of its own (text files of numbers, one per step) trains from its feature folder,
    and `classify` encodes new raw inputs with it, with no other change."""
    monkeypatch.setattr(kinds, "_KINDS", dict(kinds._KINDS))

    @kinds.register
    class Numbers(kinds.FeatureKind):
        name = "numbers"
        suffixes = (".txt",)

        def encoding(self, settings, *, dim=None, **run):
            def encode(root: Path, out: Path, found: list) -> ExtractionReport:
                report = ExtractionReport()
                for sample in found:
                    target = feature_path(sample.path, root, out)
                    save_sequence(target, np.loadtxt(sample.path, ndmin=2))
                    report.written.append(target)
                return report

            return StreamEncoding(settings, encode, dim)

    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    for label, level in (("low", 0.0), ("high", 4.0)):
        (raw / label).mkdir(parents=True)
        for i in range(8):
            np.savetxt(raw / label / f"{i}.txt", rng.normal(level, 1.0, 20))
    settings = {"kind": "numbers"}
    features = tmp_path / "features"
    Numbers().encoding(settings).run(raw, features, discover_unlabelled(raw, (".txt",)))
    write_feature_settings(features, settings)
    main(["fit", f"--data.root={features}", "--trainer.max_epochs=15", "--model.hidden_size=8",
          "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path / 'run'}"])  # fmt: skip
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    main(["classify", str(raw), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "c.csv")])
    with (tmp_path / "c.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16 and all(Path(r["path"]).suffix == ".txt" for r in rows)
    correct = sum(Path(r["path"]).parent.name == r["predicted"] for r in rows)
    assert correct >= 14  # the level is plain to see
    assert json.loads((features / "feature_settings.json").read_text()) == settings
