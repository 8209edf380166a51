"""`emollama eval` on the random tiny model: score-mode maths, batching invariance, generate + parse, folds."""

from __future__ import annotations

import math

import pytest
import torch
from tests.evaluation.eval_fixtures import dfew_two_folds, rafdb_items, rafdb_root, tiny_backend
from tests.numerics import assert_argmax_agrees, assert_close_numerics, assert_same_greedy

from emollama.evaluation.backends import model_messages
from emollama.evaluation.inputs import DecodedMedia
from emollama.evaluation.runner import evaluate
from emollama.evaluation.scoring import score_classes
from emollama.faces.contract import AnswerParser
from emollama.priors.agr import agr_from_prior
from emollama.priors.source import PriorRequest


def _rows(result, mode):
    log = result.log_path.read_text().splitlines()
    import json

    return {r["key"]: r for r in map(json.loads, log) if r["mode"] == mode}


def test_score_mode_probs_and_one_label_at_a_time(tmp_path):
    info, items = rafdb_items(rafdb_root(tmp_path), limit=3)
    backend = tiny_backend()
    res = evaluate(backend, items, info=info, mode="score", out_dir=tmp_path / "out", progress=False, n_boot=10)
    rows = _rows(res, "score")
    for it in items:
        row = rows[it.key]
        assert math.isclose(sum(row["probs"]), 1.0, abs_tol=1e-6)
        media = DecodedMedia().load(it.sample, backend.frames)
        prior = backend.priors.get(PriorRequest.for_sample(it.sample))
        conv = model_messages(it, True)
        alone = torch.stack([score_classes(backend.model, backend.processor, conv, [opt], media=[media],
                                           faces=[prior], agr=agr_from_prior(prior)).loglik[0]
                             for opt in it.options])
        # the runner's batched scoring vs one option at a time: equal up to rounding, argmax may differ only at a tie
        assert_close_numerics(torch.tensor(row["loglik"], dtype=torch.float32), alone, msg=it.key)
        assert row["pred"] == int(torch.tensor(row["loglik"]).argmax())
        assert_argmax_agrees(torch.tensor(row["loglik"])[None], alone[None], msg=it.key)
    rep = res.reports["score"]
    assert len(rep.unparseable) == 0 and all(r.status == "ok" for r in rep.records)
    assert rep.provenance["prompt_template"] == ["category_v1/ferid"] and rep.provenance["prompt_seed"] == 0
    assert {"age", "gender", "race"} <= set(rep.breakdowns)  # RAF-DB's annotated AGR
    assert "predicted_age" not in rep.breakdowns  # synthetic priors' "age" is noise, never shown as a prediction


def test_predicted_agr_from_real_priors():
    import numpy as np

    from emollama.faces.contract import FacePrior
    from emollama.priors.agr import predicted_agr

    age = np.array([[0, 0, 0.9, 0.1, 0], [0, 0, 0, 0.2, 0.8]], np.float32)
    prior = FacePrior(np.zeros((2, 478, 2)), np.zeros((2, 52)), np.zeros((2, 3)), age,
                      np.array([[0.8, 0.2], [0.1, 0.9]], np.float32), valid=np.array([True, False]),
                      meta={"backend": "mediapipe"})
    assert predicted_agr(prior) == {"predicted_age": "20-39", "predicted_gender": "female"}  # valid frames only
    assert predicted_agr(None) == {}


class _ConfidentPriors:
    """A 'real' (non-synthetic) tiny10 prior for every sample: an adult (20-39) woman, both at 0.9 confidence."""

    def describe(self):
        return {"source": "fixed"}

    def get(self, req):
        import numpy as np

        from emollama.faces.contract import FacePrior

        return FacePrior(landmarks=np.full((1, 10, 2), 0.5, np.float32), blendshapes=np.zeros((1, 8), np.float32),
                         pose=np.zeros((1, 3), np.float32), age_probs=np.array([[0.025, 0.025, 0.9, 0.025, 0.025]],
                         np.float32), gender_probs=np.array([[0.9, 0.1]], np.float32), meta={"backend": "mediapipe"})


class _SpyProcessor:
    """The backend's processor, recording the batches it builds."""

    def __init__(self, proc):
        self._proc, self.batches = proc, []

    def __getattr__(self, name):
        return getattr(self._proc, name)

    def __call__(self, *args, **kw):
        out = self._proc(*args, **kw)
        self.batches.append(out)
        return out


@pytest.mark.parametrize("agr", [True, False])
def test_eval_prompt_is_the_training_prompt_with_agr(tmp_path, agr):
    """Score and generate batches carry the AGR sentence from the predicted prior, token for token as the training
    collator builds the same question with the same prior (data.agr='prior'); agr=False (--no-agr) drops it."""
    from emollama.priors.providers import InMemoryPriorSource
    from emollama.training.collate import Collator
    from emollama.training.data import InstructionDataset

    info, items = rafdb_items(rafdb_root(tmp_path), limit=2)
    backend = tiny_backend()
    backend.priors, backend.agr = _ConfidentPriors(), agr
    proc = backend.processor
    backend.processor = spy = _SpyProcessor(proc)
    backend.predict(items, ("score", "generate"))
    assert len(spy.batches) == 2 and backend.describe()["agr"] == ("prior (agr_v1)" if agr else "none")
    # the training side: records of the same questions, priors by key, the real dataset + collator
    records = [{"id": f"r{i}", "image": str(it.sample.media), "conversations": [
        {"from": "human", "value": it.question}, {"from": "gpt", "value": "happiness"}]} for i, it in enumerate(items)]
    source = InMemoryPriorSource({f"r{i}": _ConfidentPriors().get(PriorRequest.for_sample(it.sample))
                                  for i, it in enumerate(items)})
    train = Collator(proc, face_crops="none")([ex for ex in InstructionDataset(records, "/", source,
                                                                                agr="prior" if agr else "none")])
    sentence = "The person appears to be an adult woman."
    for batch in spy.batches:  # left-padded generation prompts
        for i in range(len(items)):
            ids = batch["input_ids"][i][batch["attention_mask"][i].bool()]
            labels = train["labels"][i]
            prompt = train["input_ids"][i][: int((labels != -100).nonzero()[0])]  # up to the first supervised token
            assert ids.tolist() == prompt.tolist()
            assert (sentence in proc.decode(ids)) == agr


def test_synonyms_combine_by_logsumexp(tmp_path):
    info, items = rafdb_items(rafdb_root(tmp_path), limit=1)
    backend = tiny_backend(max_synonyms=2)
    res = evaluate(backend, items, info=info, mode="score", out_dir=tmp_path / "out", progress=False, n_boot=0)
    row = _rows(res, "score")[items[0].key]
    it = items[0]
    media = DecodedMedia().load(it.sample, backend.frames)
    prior = backend.priors.get(PriorRequest.for_sample(it.sample))
    conv = model_messages(it, True)
    anger = it.options.index("anger")
    both = score_classes(backend.model, backend.processor, conv, ["anger", "angry"], media=[media], faces=[prior],
                         agr=agr_from_prior(prior))
    # scored in another batch (all options' candidates vs these two): equal up to float32 rounding
    assert_close_numerics(torch.tensor([row["loglik"][anger]]), torch.logsumexp(both.loglik.double(), 0)[None],
                          dtype=torch.float32)
    assert "synonyms" in res.reports["score"].provenance["score_candidates"]


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_batching_does_not_change_results(tmp_path, mode):
    info, items = rafdb_items(rafdb_root(tmp_path), limit=4)
    backend = tiny_backend()
    outs = _record_generate(backend.model)
    one = evaluate(backend, items, info=info, mode=mode, out_dir=tmp_path / "b1", batch_size=1, progress=False,
                   n_boot=0)
    four = evaluate(backend, items, info=info, mode=mode, out_dir=tmp_path / "b4", batch_size=4, progress=False,
                    n_boot=0)
    r1, r4 = _rows(one, mode), _rows(four, mode)
    assert r1.keys() == r4.keys() == {it.key for it in items}
    # another batch composition rounds differently: values equal up to rounding, choices may differ only at a tie
    if mode == "score":
        for k in r1:
            assert_close_numerics(torch.tensor(r1[k]["loglik"]), torch.tensor(r4[k]["loglik"]), msg=k)
            assert_argmax_agrees(torch.tensor(r1[k]["loglik"])[None], torch.tensor(r4[k]["loglik"])[None], msg=k)
    else:  # items are run in order: one generate per item at batch size 1, then one with a row per item
        assert len(outs) == len(items) + 1
        eos = backend.processor.tokenizer.eos_token_id
        for i, it in enumerate(items):
            assert_same_greedy(outs[i], outs[-1], 0, i, eos=eos, msg=it.key)
            if torch.equal(_answer_ids(outs[i], 0, eos), _answer_ids(outs[-1], i, eos)):
                assert r1[it.key]["answer"] == r4[it.key]["answer"]


def _record_generate(model) -> list:
    """Make ``model.generate`` keep each call's step logits (for assert_same_greedy) while returning plain ids."""
    outs, generate = [], model.generate

    def recording(*args, **kw):
        out = generate(*args, **kw, output_logits=True, return_dict_in_generate=True)
        outs.append(out)
        return out.sequences

    model.generate = recording
    return outs


def _answer_ids(out, row: int, eos: int) -> torch.Tensor:
    """Generated ids of ``row`` up to and including the first ``eos``."""
    ids = out.sequences[row, -len(out.logits):]
    hits = (ids == eos).nonzero()
    return ids[: int(hits[0]) + 1] if len(hits) else ids


def test_generate_end_to_end_counts_unparseable(tmp_path):
    info, items = rafdb_items(rafdb_root(tmp_path))
    res = evaluate(tiny_backend(max_new_tokens=8), items, info=info, mode="both", policy="strict",
                   out_dir=tmp_path / "out", batch_size=3, progress=False, n_boot=20)
    gen = res.reports["generate"]
    parser = AnswerParser(info.canonical, "strict")
    assert len(gen.records) == len(items) == 5
    for rec in gen.records:  # whatever the random model says, the report holds the parser's verdict
        p = parser(rec.answer)
        assert (rec.status, rec.pred) == (p.status, -1 if p.index is None else p.index)
    bad = sum(r.status != "ok" for r in gen.records)
    assert gen.to_dict()["unparseable"]["count"] == bad
    assert gen.confusion and sum(map(sum, gen.confusion)) == 5
    a = res.agreement
    assert a["n"] == 5 and 0 <= a["agree"] <= a["generate_parsed"] <= 5
    paths = res.save(tmp_path / "out")
    assert {"score.json", "generate.md", "agreement.json"} <= {p.name for p in paths.values()}


def test_fold_mean_on_two_folds(tmp_path):
    from emollama.data.benchmarks import get_benchmark
    from emollama.evaluation.runner import build_items

    root = dfew_two_folds(tmp_path)
    bench = get_benchmark("dfew")
    groups = [(str(k), bench.load(root, "test", k).samples) for k in (1, 2)]
    info = bench.info()
    items = build_items(groups, info)
    assert [len(g[1]) for g in groups] == [2, 3]
    res = evaluate(tiny_backend(canonical=info.canonical), items, info=info, mode="score", out_dir=tmp_path / "o",
                   progress=False, n_boot=10)
    rep = res.reports["score"]
    assert set(rep.folds) == {"1", "2"} and rep.pooled is not None
    for m in ("war", "uar", "macro_f1"):
        vals = [rep.folds[f][m] for f in ("1", "2")]
        if None not in vals:
            assert math.isclose(rep.metrics[m]["value"], sum(vals) / 2, abs_tol=1e-9)
    assert rep.metrics["convention"].startswith("fold_mean over 2 folds")
    assert all(it.sample.is_video for it in items) and "<video>" in model_messages(items[0], True)[0]["content"]
