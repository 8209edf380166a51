"""`data.class_balance`: a seeded weighted permutation that shows rare classes earlier (issue 13's recipe)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from emollama.training.args import DataArgs
from emollama.training.data import InstructionDataset
from emollama.training.sampler import ClassBalancedSampler, balance_weights

# FER2013 train's class sizes (anger .. neutral), scaled by 1/10
SIZES = {"anger": 400, "disgust": 44, "fear": 410, "happiness": 722, "sadness": 483, "surprise": 317, "neutral": 497}


def _labels() -> list[str]:
    return [c for c, n in SIZES.items() for _ in range(n)]


def test_weights_follow_the_label_frequencies():
    labels = ["a"] * 4 + ["b"] + [None]
    w = balance_weights(labels, "inverse")
    assert w[:4].tolist() == [0.25] * 4 and w[4] == 1.0
    assert w[5] == pytest.approx((4 * 0.25 + 1.0) / 5)  # unlabelled: the mean labelled weight
    assert balance_weights(labels, "sqrt")[0] == pytest.approx(0.5)
    assert balance_weights(labels, "none").tolist() == [1.0] * 6
    with pytest.raises(ValueError, match="none, sqrt or inverse"):
        balance_weights(labels, "cube")


def test_sampler_is_a_seeded_permutation_that_front_loads_rare_classes():
    labels = _labels()
    s = ClassBalancedSampler(balance_weights(labels, "sqrt"), seed=3)
    first = list(s)
    assert sorted(first) == list(range(len(labels)))  # every sample once per epoch
    # a pure function of (seed, epoch): a fresh sampler in a new process (what --resume builds) replays it
    assert list(ClassBalancedSampler(balance_weights(labels, "sqrt"), seed=3)) == first
    s.set_epoch(1)
    assert list(s) != first
    s.set_epoch(0)
    assert list(s) == first
    # the first 20 % of an epoch: disgust (1.5 % of the data) near its sqrt share, happiness below its 25 %
    head = Counter(labels[i] for i in first[: len(first) // 5])
    n = sum(head.values())
    sqrt_share = SIZES["disgust"] ** 0.5 / sum(v ** 0.5 for v in SIZES.values())
    assert head["disgust"] / n > 2.5 * SIZES["disgust"] / len(labels)
    assert head["disgust"] / n == pytest.approx(sqrt_share, rel=0.35)
    assert head["happiness"] / n < 0.9 * SIZES["happiness"] / len(labels)
    uniform = ClassBalancedSampler(balance_weights(labels, "none"), seed=3)
    head_u = Counter(labels[i] for i in list(uniform)[: len(first) // 5])
    assert head_u["disgust"] < head["disgust"]


def test_dataset_labels_and_config_checks(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    recs = [{"image": "a.jpg", "conversations": [{"from": "human", "value": "<image>\nq"},
                                                  {"from": "gpt", "value": "anger"}], "label": lab}
            for lab in ({"index": 0, "name": "anger"}, "fear", None)]
    ds = InstructionDataset(recs, tmp_path)
    assert [ds.label(i) for i in range(3)] == ["anger", "fear", None]
    with pytest.raises(ValueError, match="group_by_modality_length=false"):
        DataArgs(class_balance="sqrt")
    with pytest.raises(ValueError, match="class_balance"):
        DataArgs(class_balance="cube", group_by_modality_length=False)
    assert DataArgs(class_balance="sqrt", group_by_modality_length=False).class_balance == "sqrt"


def test_trainer_uses_the_balanced_sampler(tmp_path):
    from emollama.training.trainer import EmoTrainer

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def label(self, i):
            return "rare" if i == 0 else "common"

    t = EmoTrainer.__new__(EmoTrainer)  # the sampler choice only: no model needed
    t.train_dataset, t.class_balance, t.group_by_modality = DS(), "inverse", False
    t.args = type("A", (), {"data_seed": None, "seed": 0})()
    sampler = t._get_train_sampler()
    assert isinstance(sampler, ClassBalancedSampler)
    assert sampler.weights[0] == pytest.approx(9 * sampler.weights[1])
