"""dataset -> `prepare` -> `gen-data --priors MANIFEST`: records carry the face-prior cache key of their sample."""

from __future__ import annotations

import sys
from pathlib import Path

from emollama.cli.__main__ import main
from emollama.data.schema import read_jsonl
from emollama.priors.cache import PriorCache

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import fer_layouts as F  # noqa: E402


def test_recipe_dataset_prepare_gen_data(tmp_path):
    root = tmp_path / "ds"
    for i in range(4):
        F.image(root / "train" / ("happy", "sad")[i % 2] / f"{i:02d}.png", 11 * i)
    cache, manifest = tmp_path / "cache", tmp_path / "manifest.jsonl"
    assert main(["prepare", "folder", str(root), "--split", "train", "--out", str(cache), "--extractor", "synthetic",
                 "--crop-size", "16", "--manifest", str(manifest)]) == 0
    out = tmp_path / "cat.jsonl"
    assert main(["gen-data", "folder", str(root), "--split", "train", "--kind", "category", "--out", str(out),
                 "--priors", str(manifest)]) == 0
    recs = list(read_jsonl(out))
    c = PriorCache(cache)
    assert len(recs) == 4 and all(r.prior_key and c.has(r.prior_key) for r in recs)
    assert len({r.prior_key for r in recs}) == 4
    conv = tmp_path / "conv.jsonl"
    assert main(["gen-data", "folder", str(root), "--split", "train", "--kind", "conversation", "--provider",
                 "offline", "--out", str(conv), "--priors", str(manifest)]) == 0
    assert {r.prior_key for r in read_jsonl(conv)} <= {r.prior_key for r in recs}
