"""Python API: `Analyzer` (CPU face analyzer, no LLM) and `EmoLlama` (the MLLM), each `.predict(...)` -> `Prediction`s.

Both reuse the `emollama analyze` code: media loading (`analyze.media.load_image`), the video `Runner` with face
tracking, and the record builders (`analyze.records`), so `Prediction.record` is an `emollama analyze` record
(docs/analyze.schema.json). `EmoLlama` adds the MLLM: the analyzer's priors fill `<face>`, its age/gender the AGR
prompt; closed-set class scoring gives label and probabilities, greedy generation the text. The HTTP server
(`emollama.serve`) is a thin layer over this module.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from emollama.analyze.media import MediaError, load_image, to_rgb_uint8
from emollama.analyze.records import empty_record, face_record

logger = logging.getLogger(__name__)
DEFAULT_QUESTION = "What is the facial expression of the person? Explain the facial cues."
ANALYZER_ID = "emollama-analyzer"


class MediaLimitError(MediaError):
    """Media over a configured limit (pixels, video duration or frames): a 413 for the server."""


@dataclass(frozen=True)
class MediaLimits:
    """Bounds on one input. max_pixels: per image / video frame; max_video_s: duration in seconds; max_video_frames:
    frames analysed per video (a denser sampling policy is thinned to 'uniform:max_video_frames')."""

    max_pixels: int = 40_000_000
    max_video_s: float = 120.0
    max_video_frames: int = 64


@dataclass(frozen=True)
class Prediction:
    """One face (image) or one face track (video).

    Attributes:
        label / probabilities: expression label and class probabilities (analyzer fusion, or MLLM class scoring).
        text: the answer (MLLM generation; for `Analyzer` the explanation). explanation: the analyzer's sentence.
        au: AU-like cues in [0, 1]. agr: the AGR sentence from predicted age/gender (None when not confident).
        box: (x0, y0, x1, y1) pixels; track_id: video track id (None for images); face_index: order in the image.
        record: the `emollama analyze` record of this face/track (docs/analyze.schema.json).
    """

    label: str | None
    probabilities: Mapping[str, float]
    text: str
    explanation: str
    au: Mapping[str, float]
    agr: str | None
    box: tuple[float, float, float, float]
    track_id: int | None
    face_index: int
    media: str
    model: str
    record: Mapping[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe copy."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("probabilities", "au", "record"):
            out[k] = dict(out[k])
        out["box"] = list(self.box)
        return out


@dataclass
class _Analysed:
    """Records of one input plus, per face/track record, its analyzer results over frames (for the MLLM)."""

    media: str
    records: list[dict[str, Any]]
    results: list[list[Any]]  # per face/track record: FaceResult (or None) per kept frame
    frames: list[np.ndarray]  # the image, or the analysed video frames (kept only when asked)


class _Capture:
    """Wraps the face analyzer for the video `Runner`, keeping each frame's faces (and pixels when asked).

    Each clip starts with `reset_video` (fresh VIDEO-mode state), so timestamps are the clip's own.
    """

    def __init__(self, backend) -> None:
        self.backend, self.keep_frames, self.frames = backend, False, []

    def start(self, keep_frames: bool) -> None:
        self.keep_frames, self.frames = keep_frames, []

    def reset_video(self) -> None:
        if hasattr(self.backend, "reset_video"):
            self.backend.reset_video()

    def analyze_image(self, rgb):
        return self.backend.analyze_image(rgb)

    def analyze_frame(self, rgb, timestamp_ms: int, frame_index: int | None = None):
        faces = self.backend.analyze_frame(rgb, timestamp_ms, frame_index)
        self.frames.append((frame_index, rgb if self.keep_frames else None, faces))
        return faces


def _digest(data: bytes | str) -> str:
    return "sha256:" + hashlib.sha256(data if isinstance(data, bytes) else os.fsencode(data)).hexdigest()[:16]


class Analyzer:
    """The CPU face analyzer behind `emollama analyze`: per face box, label, probabilities, AU cues, explanation.

    Args:
        backend: 'mediapipe' (default), 'synthetic' (dependency-free stand-in, tests only) or an analyzer object.
        limits: `MediaLimits`; video_sampling: frame policy for videos (as `emollama analyze --video-sampling`).
        max_faces: faces analysed per image / frame, the largest (`emollama analyze --max-faces`; default 100).
        faces: 'auto' (default) | 'detect' | 'whole-image' (`emollama analyze --faces`).
        expression: 'emonet' (default, learned) | 'mini-xception' (baseline) (`emollama analyze --expression`).
    """

    name = ANALYZER_ID

    def __init__(self, backend: str | Any = "mediapipe", *, limits: MediaLimits | None = None,
                 video_sampling: str = "fps:2", max_faces: int | None = None, faces: str = "auto",
                 expression: str = "emonet") -> None:
        from emollama.analyze.runner import AnalyzeOptions, Runner
        from emollama.faces.detect import DEFAULT_MAX_FACES
        from emollama.vision.sampling import parse_policy

        parse_policy(video_sampling)
        max_faces = max_faces or DEFAULT_MAX_FACES
        self.backend_name = backend if isinstance(backend, str) else type(backend).__name__
        if backend == "synthetic":
            from emollama.analyze.synthetic import SyntheticAnalyzer

            backend = SyntheticAnalyzer()
        elif backend == "mediapipe":
            from emollama.faces.analyzer import Analyzer as FaceAnalyzer
            from emollama.faces.analyzer import AnalyzerConfig
            from emollama.faces.detect import DetectorConfig

            backend = FaceAnalyzer(AnalyzerConfig(detector=DetectorConfig(max_faces=max_faces), faces=faces,
                                                  expression_model=expression))
        self.backend, self.limits, self.video_sampling = backend, limits or MediaLimits(), video_sampling
        self.max_faces, self.faces, self.expression = max_faces, faces, expression
        self.options = AnalyzeOptions(backend=self.backend_name, video_sampling=video_sampling,
                                      max_pixels=self.limits.max_pixels, max_faces=max_faces, faces=faces,
                                      expression=expression)
        self._capture = _Capture(backend)
        self._runner = Runner(self._capture, self.options)

    def spawn(self) -> Analyzer:
        """A new Analyzer with the same settings and its own models (one analyzer per thread)."""
        return Analyzer(self.backend_name if self.backend_name in ("mediapipe", "synthetic") else self.backend,
                        limits=self.limits, video_sampling=self.video_sampling, max_faces=self.max_faces,
                        faces=self.faces, expression=self.expression)

    def load(self) -> None:
        """Load the face models now instead of on the first request."""
        if hasattr(self.backend, "load"):
            self.backend.load()

    def close(self) -> None:
        if hasattr(self.backend, "close"):
            self.backend.close()

    # --- analysis --------------------------------------------------------------------------------------------
    def analyze(self, image: Any = None, video: Any = None, *, source: str | None = None) -> list[dict[str, Any]]:
        """`emollama analyze` records (face / track / no_face) for one image or video; raises `MediaError`."""
        return self._analyse(image, video, source=source).records

    def predict(self, image: Any = None, video: Any = None, question: str | None = None, faces: str = "all",
                **_: Any) -> list[Prediction]:
        """One `Prediction` per face (image) or track (video); ``text`` is the analyzer's explanation (``question``
        cannot change it: there is no language model here). ``faces``: 'all' or 'largest'."""
        a = self._analyse(image, video)
        return [self._prediction(r, res, a.media) for r, res in _select(a, faces)]

    def _prediction(self, rec: dict[str, Any], results: list, media: str, **override: Any) -> Prediction:
        from emollama.instruct.agr import render_agr

        attrs = next((r.attributes for r in results if r is not None and r.attributes is not None), None)
        fields = dict(label=rec.get("label"), probabilities=MappingProxyType(dict(rec.get("probabilities") or {})),
                      text=rec.get("explanation") or "", explanation=rec.get("explanation") or "",
                      au=MappingProxyType(dict(rec.get("au") or {})),
                      agr=render_agr(attrs.to_agr()) if attrs is not None else None,
                      box=tuple(rec["box"]), track_id=rec.get("track_id"), face_index=int(rec.get("face_index") or 0),
                      media=media, model=self.name, record=MappingProxyType(rec))
        fields.update(override)
        return Prediction(**fields)

    def _analyse(self, image: Any, video: Any, *, source: str | None = None, keep_frames: bool = False) -> _Analysed:
        if (image is None) == (video is None):
            raise ValueError("pass exactly one of image=... or video=...")
        if image is not None:
            rgb, key, src = self._load_image(image)
            out = self._image(rgb, source or src, keep_frames)
        else:
            with tempfile.TemporaryDirectory(prefix="emollama-") as tmp:
                path, key, src = _as_file(video, Path(tmp), ".mp4")
                out = self._video(path, source or src, keep_frames)
        for i, r in enumerate(out.records):  # the fields ResultStore stamps, so records match the published schema
            r.update(item_key=key, options_hash=self.options.digest(), record_index=i, records_in_item=len(out.records))
        return out

    def _load_image(self, image: Any) -> tuple[np.ndarray, str, str]:
        if isinstance(image, (str, os.PathLike, bytes)):
            with tempfile.TemporaryDirectory(prefix="emollama-") as tmp:
                path, key, src = _as_file(image, Path(tmp), ".img")
                try:
                    return load_image(path, self.limits.max_pixels), key, src
                except MediaError as err:
                    cls = MediaLimitError if "too large" in err.reason else MediaError
                    raise cls(src, err.reason, err.detail.replace(str(path), src), err.fix) from None
        from PIL import Image

        rgb = to_rgb_uint8(image) if isinstance(image, Image.Image) else np.ascontiguousarray(image, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"image arrays must be (H, W, 3) uint8 RGB, got shape {rgb.shape}")
        if rgb.shape[0] * rgb.shape[1] > self.limits.max_pixels:
            raise MediaLimitError("array", "image too large", f"{rgb.shape[1]}x{rgb.shape[0]}", "resize it")
        return rgb, _digest(rgb.tobytes()), "array"

    def _image(self, rgb: np.ndarray, source: str, keep_frames: bool) -> _Analysed:
        faces = self.backend.analyze_image(rgb)
        size = (rgb.shape[1], rgb.shape[0])
        if not faces:
            return _Analysed("image", [empty_record(source=source, media="image", image_size=size)], [], [rgb])
        recs = [face_record(f, source=source, media="image", face_index=i, image_size=size)
                for i, f in enumerate(faces)]
        return _Analysed("image", recs, [[f] for f in faces], [rgb] if keep_frames else [])

    def _video(self, path: Path, source: str, keep_frames: bool) -> _Analysed:
        from emollama.analyze.inputs import Item
        from emollama.faces.track import FaceTracker

        self._runner.options = self._check_video(path)
        self._capture.start(keep_frames)
        records = self._runner.analyze_item(Item(path, "video"))
        if records[0]["kind"] == "error":
            e = records[0]["error"]
            if e["reason"] == "analysis failed":
                raise RuntimeError(f"video analysis failed: {e['detail']}")
            raise MediaError(source, e["reason"], e["detail"].replace(str(path), source), e["fix"])
        for r in records:
            r["source"] = source
        # replay the runner's deterministic tracker over the captured faces: same ids, and we keep the FaceResults
        tracker, frames = FaceTracker(), self._capture.frames
        for idx, _, faces in frames:
            tracker.update(faces, idx, faces[0].timestamp_ms / 1000.0 if faces else None)
        by_id = {t.track_id: {p.frame_index: p.detection for p in t.points} for t in tracker.finish()}
        results = [[by_id.get(r.get("track_id"), {}).get(idx) for idx, _, _ in frames]
                   for r in records if r["kind"] == "track"]
        return _Analysed("video", records, results, [f for _, f, _ in frames if f is not None])

    def _check_video(self, path: Path):
        """Probe the video against the limits; thin a dense sampling policy to max_video_frames."""
        import dataclasses

        from emollama.vision.sampling import candidate_indices
        from emollama.vision.video import VideoError, VideoReader

        lim = self.limits
        try:
            info = VideoReader(path).info
        except VideoError as err:
            raise MediaError("upload", "unreadable video", str(err).replace(str(path), "upload"),
                             "check that the file plays in a media player; re-encode it (e.g. to H.264 mp4)") from None
        if info.duration_s > lim.max_video_s:
            raise MediaLimitError("upload", "video too long", f"{info.duration_s:.1f} s > {lim.max_video_s:g} s",
                                  "trim the clip")
        if info.width * info.height > lim.max_pixels:
            raise MediaLimitError("upload", "video frames too large", f"{info.width}x{info.height}", "downscale it")
        policy = self.video_sampling
        if len(candidate_indices(info.num_frames, info.fps, policy)) > lim.max_video_frames:
            policy = f"uniform:{lim.max_video_frames}"
            logger.info("video %s: %s samples too many frames; using %s", path.name, self.video_sampling, policy)
        return dataclasses.replace(self.options, video_sampling=policy)


def _as_file(data: Any, tmp: Path, suffix: str) -> tuple[Path, str, str]:
    """(path, item key, source) for a path or raw bytes (written to ``tmp``: the loaders read files)."""
    if isinstance(data, (str, os.PathLike)):
        from emollama.analyze.paths import path_text

        return Path(data), _digest(str(Path(data).resolve())), path_text(data)  # any file name, as in records
    if not isinstance(data, bytes):
        raise TypeError(f"video must be a path or bytes, got {type(data).__name__}")
    path = tmp / f"upload{suffix}"
    path.write_bytes(data)
    return path, _digest(data), "upload"


def _select(a: _Analysed, faces: str) -> list[tuple[dict[str, Any], list]]:
    """(record, results) per face/track, all or only the largest (most frames, then box area)."""
    if faces not in ("all", "largest"):
        raise ValueError(f"faces must be 'all' or 'largest', got {faces!r}")
    pairs = list(zip([r for r in a.records if r["kind"] in ("face", "track")], a.results, strict=True))
    if faces == "largest" and pairs:
        def size(p):
            x0, y0, x1, y1 = p[0]["box"]
            return (p[0].get("frames_with_face") or 1, (x1 - x0) * (y1 - y0))

        pairs = [max(pairs, key=size)]
    return pairs


class EmoLlama:
    """EMO-LLaMA behind the analyzer: each face's analyzer priors fill `<face>`, its age/gender the AGR prompt.

    Label and probabilities come from closed-set class scoring (`emollama.evaluation.scoring`), ``text`` from
    greedy generation; ``explanation``, ``au`` and ``record`` stay the analyzer's.

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
        """Load a model directory saved by `save_pretrained` / `emollama convert` (see docs/serving.md)."""
        from emollama.model.checkpoint import load_pretrained

        model, processor = load_pretrained(path, device=device)
        return cls(model, processor, analyzer, name=f"emollama-mllm:{Path(path).resolve().name}",
                   max_new_tokens=max_new_tokens)

    def spawn(self) -> EmoLlama:
        """Same weights (shared, read-only), own analyzer: one per serving thread."""
        return EmoLlama(self.model, self.processor, self.analyzer.spawn(), name=self.name,
                        max_new_tokens=self.max_new_tokens)

    def load(self) -> None:
        self.analyzer.load()

    def close(self) -> None:
        self.analyzer.close()

    def analyze(self, image: Any = None, video: Any = None, *, source: str | None = None) -> list[dict[str, Any]]:
        """The analyzer's `emollama analyze` records (no MLLM call)."""
        return self.analyzer.analyze(image, video, source=source)

    def predict(self, image: Any = None, video: Any = None, question: str | None = None, faces: str = "all",
                history: list[dict[str, str]] | None = None, max_new_tokens: int | None = None) -> list[Prediction]:
        """Answer ``question`` about each face (image) or face track (video).

        Args:
            max_new_tokens: answer length cap (default: the instance's ``max_new_tokens``).
            history: earlier text turns [{"role": "user"|"assistant", "content": str}] of a chat; the media and
                `<face>` placeholders go into the first user turn.
        """
        import torch

        from emollama.evaluation.scoring import score_classes
        from emollama.faces.decide import LABELS
        from emollama.instruct.agr import render_agr

        a = self.analyzer._analyse(image, video, keep_frames=True)
        conv = self._conversation(a.media, question or DEFAULT_QUESTION, history or [])
        out = []
        for rec, results in _select(a, faces):
            media, prior = self._inputs(a, results)
            attrs = next((r.attributes for r in results if r is not None and r.attributes is not None), None)
            agr = attrs.to_agr() if attrs is not None else None
            with torch.inference_mode():
                scores = score_classes(self.model, self.processor, conv, list(LABELS), media=[media], faces=[prior],
                                       agr=agr)
                batch = self.processor(conv, media=[media], faces=[prior], agr=agr, add_generation_prompt=True)
                batch.pop("labels")
                n_new = max_new_tokens or self.max_new_tokens
                ids = self.model.generate(**batch.to(self.model.device), max_new_tokens=n_new, do_sample=False)
            text = self.processor.decode(ids[0, batch["input_ids"].shape[1]:])
            probs = {k: round(float(p), 4) for k, p in zip(LABELS, scores.probs.tolist(), strict=True)}
            out.append(self.analyzer._prediction(
                rec, results, a.media, label=LABELS[scores.index], probabilities=MappingProxyType(probs), text=text,
                agr=render_agr(agr, self.model.config.agr_template) if agr else None, model=self.name))
        return out

    @staticmethod
    def _conversation(media: str, question: str, history: list[dict[str, str]]) -> list[dict[str, str]]:
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

    def _inputs(self, a: _Analysed, results: list) -> tuple[Any, Any]:
        """Media item for `<image>`/`<video>` and the face's `FacePrior` (its own frames, at most max_frames)."""
        from emollama.faces.priors import prior_from_results
        from emollama.vision.sampling import parse_policy, uniform_indices

        if a.media == "image":
            return a.frames[0], prior_from_results(results, self.processor.preprocess)
        name, n = parse_policy(self.model.config.frame_sampling or "uniform:8")
        n = int(n) if name == "uniform" else 8
        frames = [a.frames[i] for i in uniform_indices(len(a.frames), n)]
        own = [r for r in results if r is not None]
        own = [own[i] for i in uniform_indices(len(own), self.model.config.face_config.max_frames)]
        return frames, prior_from_results(own, self.processor.preprocess)
