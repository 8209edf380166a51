"""Group-by-modality-and-length sampling (LLaVA's `group_by_modality_length`), seeded per epoch.

Each global batch (per-device batch x world size) holds one modality, so image and video samples do not share a
padded batch, and samples of similar length sit together. The order is a pure function of (seed, epoch), which
`--resume` relies on to replay the interrupted epoch exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from emollama.training.args import CLASS_BALANCE


def grouped_indices(lengths: Sequence[int], modalities: Sequence[str], group: int, generator: torch.Generator
                    ) -> list[int]:
    """Indices ordered in megabatches of ``group`` samples of one modality, sorted by length inside.

    Megabatches are shuffled; the partial tail of each modality is merged into one final mixed megabatch.
    """
    if len(lengths) != len(modalities):
        raise ValueError(f"{len(lengths)} lengths but {len(modalities)} modalities")
    megabatches, leftovers = [], []
    for mod in sorted(set(modalities)):
        idx = [i for i, m in enumerate(modalities) if m == mod]
        perm = [idx[j] for j in torch.randperm(len(idx), generator=generator).tolist()]
        full = len(perm) - len(perm) % group
        for s in range(0, full, group):
            megabatches.append(sorted(perm[s:s + group], key=lambda i: -lengths[i]))
        leftovers.extend(perm[full:])
    order = torch.randperm(len(megabatches), generator=generator).tolist()
    out = [i for k in order for i in megabatches[k]]
    return out + sorted(leftovers, key=lambda i: -lengths[i])


class _EpochSeeded(Sampler[int]):
    """A sampler over ``n`` items whose order is a pure function of (seed, epoch): what `--resume` replays."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + self.epoch)


class ModalityLengthGroupedSampler(_EpochSeeded):
    """Sampler over a dataset with `length(i)` and `modality(i)`.

    Args:
        lengths / modalities: per-sample length proxy and modality name.
        group: samples per megabatch, normally per-device batch x world size (one optimizer micro-step).
        seed: base seed; epoch e uses seed + e.
    """

    def __init__(self, lengths: Sequence[int], modalities: Sequence[str], group: int, seed: int = 0) -> None:
        super().__init__(len(lengths), seed)
        self.lengths, self.modalities, self.group = list(lengths), list(modalities), max(1, group)

    def __iter__(self) -> Iterator[int]:
        return iter(grouped_indices(self.lengths, self.modalities, self.group, self._generator()))


class SeededRandomSampler(_EpochSeeded):
    """A random permutation that depends only on (seed, epoch) (used when grouping is off)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        super().__init__(n, seed)

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n, generator=self._generator()).tolist())


def balance_weights(labels: Sequence[str | None], mode: str) -> torch.Tensor:
    """Per-sample draw weights (N,) float64: freq(label)^-1/2 ('sqrt') or ^-1 ('inverse'); 'none' = all ones.

    Samples without a label (None) weigh as the mean labelled weight, so unlabelled data is neither favoured nor
    starved.
    """
    if mode not in CLASS_BALANCE:
        raise ValueError(f"class balance {mode!r}: use none, sqrt or inverse")
    n = len(labels)
    if mode == "none" or n == 0:
        return torch.ones(n, dtype=torch.float64)
    counts: dict[str, int] = {}
    for lab in labels:
        if lab is not None:
            counts[lab] = counts.get(lab, 0) + 1
    power = 0.5 if mode == "sqrt" else 1.0
    w = [counts[lab] ** -power if lab is not None else float("nan") for lab in labels]
    t = torch.tensor(w, dtype=torch.float64)
    known = ~torch.isnan(t)
    t[~known] = t[known].mean() if known.any() else 1.0
    return t


class ClassBalancedSampler(_EpochSeeded):
    """A weighted random permutation (without replacement) that depends only on (seed, epoch).

    Every sample still appears once per epoch; the weights decide how early, so a run of `max_steps` shorter
    than an epoch sees rare classes more often. The draw starts at class shares proportional to freq x weight
    (sqrt: freq^1/2) and drifts back towards freq as rare samples run out (FER2013, sqrt, the first 16 % of an
    epoch: disgust 1.5 % -> 4.0 %; with 'inverse' disgust would be used up early).
    """

    def __init__(self, weights: torch.Tensor, seed: int = 0) -> None:
        super().__init__(len(weights), seed)
        self.weights = weights.double()

    def __iter__(self) -> Iterator[int]:
        g = self._generator()
        if len(self.weights) == 0:
            return iter([])
        # Efraimidis-Spirakis keys u^(1/w): sorting them is a weighted draw without replacement, exact and O(N log N)
        u = torch.rand(len(self.weights), generator=g, dtype=torch.float64)
        keys = u.log() / self.weights
        return iter(torch.argsort(keys, descending=True).tolist())
