"""`EmoLlama`: EMO-LLaMA behind the `Analyzer`, as a Python API.

Each face's analyzer results fill `<face>` (priors) and the AGR prompt (age/gender). The label and probabilities are
the closed-set class scores under FERID's category question (the question the model is trained and benchmarked on);
the text is the greedy answer to the user's question (`emollama.model.inference.answer`).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

from emollama.api.analyzer import Analyzer
from emollama.api.types import DEFAULT_QUESTION, Analysis, Prediction
from emollama.faces.pipeline import FaceTrack
from emollama.media.sampling import DEFAULT_POLICY, parse_policy, uniform_indices

LABEL_FROM = ("category", "question")
LABEL_TEMPLATE = "category_v1/ferid"  # FERID's wording, one of the recipe's four training templates


def category_question(video: bool) -> str:
    """FERID's closed-set question with the 7 canonical classes in the analyzer's order (training's wording)."""
    from emollama.faces.decide import LABELS
    from emollama.instruct.templates import get_template

    return get_template(LABEL_TEMPLATE).render(list(LABELS), video)


class EmoLlama:
    """EMO-LLaMA behind the analyzer: each face's analyzer priors fill `<face>`, its age/gender the AGR prompt.

    Label and probabilities come from closed-set class scoring under FERID's category question (``label_from=
    "category"``, the quantity `emollama eval` measures), ``text`` from greedy generation for the user's question;
    ``explanation``, ``au`` and ``record`` stay the analyzer's.

    Args:
        model / processor: from `emollama.model.checkpoint.load_pretrained` (or `build_tiny`). Its face config must
            use the analyzer's MediaPipe layout (478 landmarks, 52 blendshapes).
        analyzer: the `Analyzer` that finds faces and computes priors (default: mediapipe).
    """

    def __init__(self, model, processor, analyzer: Analyzer | None = None, *, name: str = "emollama-mllm",
                 max_new_tokens: int = 64) -> None:
        fc = model.config.face_config
        if (fc.num_landmarks, fc.num_blendshapes) != (478, 52):
            raise ValueError(f"model face_config has {fc.num_landmarks} landmarks / {fc.num_blendshapes} blendshapes "
                             f"(layout {fc.landmark_layout!r}); the analyzer's priors are mediapipe478 with 52 "
                             "blendshapes: use a model trained on MediaPipe priors")
        self.model, self.processor, self.name, self.max_new_tokens = model, processor, name, max_new_tokens
        self.analyzer = analyzer or Analyzer()

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str = "cpu", *, analyzer: Analyzer | None = None,
                        max_new_tokens: int = 64) -> EmoLlama:
        """Load a shipped model by name (``"emollama-small"``), a directory written by `emollama export`, or a model
        directory saved by `save_pretrained` / `emollama convert` (see docs/serving.md). Offline."""
        from emollama.training.ship import SHIPPED, load_any

        model, processor = load_any(path, device=device)
        name = str(path) if str(path) in SHIPPED else f"emollama-mllm:{Path(path).resolve().name}"
        return cls(model, processor, analyzer, name=name, max_new_tokens=max_new_tokens)

    def spawn(self) -> EmoLlama:
        """Same weights (shared, read-only), own analyzer: one per serving thread."""
        return EmoLlama(self.model, self.processor, self.analyzer.spawn(), name=self.name,
                        max_new_tokens=self.max_new_tokens)

    def load(self) -> None:
        """Load the analyzer's face models now instead of on the first request."""
        self.analyzer.load()

    def close(self) -> None:
        """Release the analyzer's face models."""
        self.analyzer.close()

    def analyze(self, image: Any = None, video: Any = None, *, source: str | None = None) -> list[dict[str, Any]]:
        """The analyzer's `emollama analyze` records (no MLLM call)."""
        return self.analyzer.analyze(image, video, source=source)

    def predict(self, image: Any = None, video: Any = None, question: str | None = None, faces: str = "all",
                history: list[dict[str, str]] | None = None, max_new_tokens: int | None = None,
                label_from: str = "category") -> list[Prediction]:
        """Answer ``question`` about each face (image) or face track (video).

        Args:
            max_new_tokens: answer length cap (default: the instance's ``max_new_tokens``).
            label_from: where the label and probabilities are scored. "category" (default): after FERID's
                closed-set question listing the 7 classes, as in training and `emollama eval` (one more prompt
                prefill). "question": after ``question`` itself, sharing generation's prefill; a bare class word is
                an unlikely answer to an open question, so these probabilities are poorly calibrated unless the
                question is itself a closed-set one. The category question is asked as a new one-turn chat,
                so ``history`` shapes the text, not the label. Cost with "category": one more vision-tower pass
                and prompt prefill per face (none when ``question`` is the category question itself).
            history: earlier text turns [{"role": "user"|"assistant", "content": str}] of a chat; the media and
                `<face>` placeholders go into the first user turn.
        """
        import torch

        from emollama.evaluation.scoring import score_classes
        from emollama.faces.contract import render_agr
        from emollama.faces.decide import LABELS
        from emollama.model.inference import answer, generate_text

        if label_from not in LABEL_FROM:
            raise ValueError(f"label_from={label_from!r}: use one of {', '.join(LABEL_FROM)}")
        a = self.analyzer.analysis(image, video, keep_frames=True)
        conv = conversation(a.media, question or DEFAULT_QUESTION, history or [])
        label_conv = conversation(a.media, category_question(a.media == "video"), [])
        out = []
        for rec, face in a.select(faces):
            media, prior = self._inputs(a, face)
            attrs = face.attributes
            agr = attrs.to_agr() if attrs is not None else None
            cap = max_new_tokens or self.max_new_tokens
            with torch.inference_mode():
                if label_from == "question" or label_conv == conv:  # one prompt: scoring shares generation's prefill
                    ans = answer(self.model, self.processor, conv, list(LABELS), media=[media], faces=[prior],
                                 agr=agr, max_new_tokens=cap)
                    scores, text = ans.scores, ans.text
                else:  # two prompts: the label's (category question) and the user's (generation only)
                    scores = score_classes(self.model, self.processor, label_conv, list(LABELS), media=[media],
                                           faces=[prior], agr=agr)
                    text, _ = generate_text(self.model, self.processor, conv, media=[media], faces=[prior], agr=agr,
                                            max_new_tokens=cap)
            probs = {k: round(float(p), 4) for k, p in zip(LABELS, scores.probs.tolist(), strict=True)}
            out.append(Prediction.from_record(
                rec, face, a.media, self.name, label=LABELS[scores.index], probabilities=MappingProxyType(probs),
                text=text, agr=render_agr(agr, self.model.config.agr_template) if agr else None))
        return out

    def _inputs(self, a: Analysis, face: FaceTrack) -> tuple[Any, Any]:
        """Media item for `<image>`/`<video>` and the face's `FacePrior` (its own frames, at most max_frames)."""
        from emollama.priors.from_faces import prior_from_results

        if a.media == "image":
            from emollama.model.face_inputs import visual_item

            prior = prior_from_results(face.results, self.processor.preprocess)
            # `visual_input: face`: the face's own crop, cut by the same code as in training and evaluation
            return visual_item(self.model.config, a.frames[0], prior), prior
        name, n = parse_policy(self.model.config.frame_sampling or DEFAULT_POLICY)
        n = int(n if name == "uniform" else parse_policy(DEFAULT_POLICY)[1])  # the model's frame count, as trained
        frames = [a.frames[i] for i in uniform_indices(len(a.frames), n)]
        own = [face.results[i] for i in uniform_indices(len(face.results), self.model.config.face_config.max_frames)]
        return frames, prior_from_results(own, self.processor.preprocess)


def conversation(media: str, question: str, history: list[dict[str, str]]) -> list[dict[str, str]]:
    """The chat for the processor: ``history``'s text turns + ``question``, placeholders in the first user turn."""
    turns = [{"role": t["role"], "content": t["content"]} for t in history
             if t.get("role") in ("user", "assistant") and t.get("content")]
    while turns and turns[0]["role"] != "user":  # the template starts with a user turn
        turns.pop(0)
    if turns and turns[-1]["role"] == "user":  # the new question replaces a trailing unanswered turn
        turns.pop()
    turns.append({"role": "user", "content": question})
    tag = "<image>" if media == "image" else "<video>"
    turns[0] = {"role": "user", "content": f"{tag}\n<face>\n{turns[0]['content']}"}
    return turns

