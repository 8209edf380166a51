"""Category instructions (FERID-style closed-set questions): samples -> validated instruction records.

Pure and deterministic: each sample gets its own ``random.Random`` derived from (seed, dataset, sample id), so its
question does not change when other samples are added, removed or reordered (a new fold, a skipped line). The
options are the dataset's own classes in official order unless a seeded, recorded shuffle is requested.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence

from emollama.constants import IMAGE_TOKEN
from emollama.data.benchmarks.base import DatasetInfo, Sample
from emollama.data.schema import InstructionRecord, Turn
from emollama.instruct.templates import CategoryTemplate, get_template, vocabulary

GENERATOR = "emollama.category@1"


def sample_rng(seed: int, dataset: str, sample_id: str) -> random.Random:
    """The per-sample generator (string seeds hash with SHA-512: stable across runs and Python processes)."""
    return random.Random(f"{seed}/{dataset}/{sample_id}")


def build_record(sample: Sample, info: DatasetInfo, template: CategoryTemplate, vocab_name: str, rng: random.Random,
                 *, seed: int, shuffle_options: bool = False, media_prefix: str = "") -> InstructionRecord:
    """One category record for ``sample``; ``rng`` is consumed only when ``shuffle_options`` is set."""
    if sample.label_index >= len(info.canonical) or info.canonical[sample.label_index] != sample.label:
        raise ValueError(f"{info.name}: sample {sample.id!r} label {sample.label!r} (index {sample.label_index}) is "
                         f"not class {sample.label_index} of {list(info.canonical)}")
    words = vocabulary(vocab_name)
    order = list(info.canonical)
    if shuffle_options:
        rng.shuffle(order)
    options = [words[c] for c in order]
    if len(set(options)) != len(options):
        raise ValueError(f"{info.name}: vocabulary {vocab_name!r} gives duplicate options {options}")
    # LLaMA-VID uses <image> for clips too (SPEC §5.5); the key (image/video) carries the modality
    question = f"{IMAGE_TOKEN}\n" + template.render(options, sample.is_video)
    media = f"{media_prefix.rstrip('/')}/{sample.media_rel}" if media_prefix else sample.media_rel
    return InstructionRecord(
        id=f"{info.name}/{sample.id}/category",
        conversations=[Turn("human", question), Turn("gpt", words[sample.label])],
        dataset=info.name, split=sample.split, fold=sample.fold, label_name=sample.label,
        dataset_index=sample.label_index, kind="category", template_id=template.id, generator=GENERATOR, seed=seed,
        image=None if sample.is_video else media, video=media if sample.is_video else None,
        options=options, vocabulary=vocab_name, extra={"shuffled": True} if shuffle_options else {},
    )


def generate(samples: Iterable[Sample], dataset: str | DatasetInfo, template_ids: Sequence[str] = ("ferid",),
             seed: int = 0, shuffle_options: bool = False, *, vocabularies: Sequence[str] = ("canonical",),
             media_prefix: str = "") -> Iterator[InstructionRecord]:
    """Yield one category record per sample.

    Args:
        samples: adapter samples (``LoadResult.samples``).
        dataset: benchmark name, or the ``DatasetInfo`` of a load (required for the generic csv/folder adapters).
        template_ids: templates to draw from (seeded choice per sample when more than one).
        seed: base seed; recorded in every record.
        shuffle_options: shuffle the option order per sample (seeded, recorded as ``options`` + extra.shuffled).
        vocabularies: vocabulary names (seeded choice per sample when more than one); recorded.
        media_prefix: prepended to media paths, e.g. "RAF-DB/basic" for a shared data root.
    """
    if isinstance(dataset, str):
        from emollama.data.benchmarks import get_benchmark

        info = get_benchmark(dataset).info()
        if not info.classes:
            raise ValueError(f"{dataset}: class list depends on ROOT; pass LoadResult.info instead of the name")
    else:
        info = dataset
    if not template_ids or not vocabularies:
        raise ValueError("generate: need at least one template id and one vocabulary")
    templates = [get_template(t) for t in template_ids]
    for v in vocabularies:
        vocabulary(v)  # fail before the first sample on an unknown name
    for sample in samples:
        rng = sample_rng(seed, info.name, sample.id)
        # fixed draw order (template, vocabulary, shuffle) keeps old records stable when options are added
        template = templates[rng.randrange(len(templates))] if len(templates) > 1 else templates[0]
        vocab = vocabularies[rng.randrange(len(vocabularies))] if len(vocabularies) > 1 else vocabularies[0]
        yield build_record(sample, info, template, vocab, rng, seed=seed, shuffle_options=shuffle_options,
                           media_prefix=media_prefix)
