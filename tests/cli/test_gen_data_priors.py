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


def test_sample_is_a_seeded_subset_in_dataset_order(tmp_path):
    """`--sample N`: a seeded random subset (not the first N, which would be one class), order kept, reproducible."""
    from emollama.cli.gen_data import select_samples

    root = tmp_path / "ds"
    for i in range(12):
        F.image(root / "train" / ("happy", "sad", "angry")[i // 4] / f"{i:02d}.png", 11 * i)
    outs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        outs[name] = tmp_path / f"{name}.jsonl"
        assert main(["gen-data", "folder", str(root), "--split", "train", "--kind", "category", "--sample", "6",
                     "--seed", str(seed), "--out", str(outs[name])]) == 0
    a, b, c = ([r.image for r in read_jsonl(outs[k])] for k in "abc")
    assert len(a) == 6 and a == b and a != c
    assert a == sorted(a)  # dataset order kept
    assert len({Path(p).parent.name for p in a}) > 1  # not the first class only
    assert select_samples(list(range(10)), limit=4, sample=0) == [0, 1, 2, 3]
    assert select_samples(list(range(10)), sample=20) == list(range(10))
