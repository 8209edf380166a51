"""One sample -> (`FacePrior` of its main face, uint8 aligned crops): a crop-aware wrapper around any
`emollama.priors.from_faces` extractor on the frames of the shared decoder (`emollama.media.decode.load_media`, so
prepare sees exactly the pixels training and eval see). Runs inside `prepare` worker processes; no cache or pool
logic here.

``mediapipe`` goes through the extractor's `Analyzer` so the stored crops are exactly `FaceResult.crop`. Other
backends have no crop output: their crop is the centre square of the frame (aligned FER data: the face fills it).
Either way the prior records the crop's region (`FacePrior.crop_boxes`), so training can cut the same crop.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from emollama.faces.align import CropConfig
from emollama.faces.contract import FacePrior
from emollama.faces.pipeline import video_faces
from emollama.media.sampling import parse_policy
from emollama.media.video import Frame
from emollama.priors.keys import ExtractorSpec

logger = logging.getLogger(__name__)

DELAY_ENV = "EMOLLAMA_PREPARE_TEST_DELAY"  # test hook: seconds to sleep per sample (kill -9 tests)
CRASH_ENV = "EMOLLAMA_PREPARE_TEST_CRASH"  # test hook: a worker dies on media whose path contains this text


class SampleError(Exception):
    """A sample that cannot be processed; ``reason`` is short and stable (it is counted in reports)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Extraction:
    """What a worker returns for one sample: the prior and its crops, or why it failed."""

    prior: FacePrior | None = None
    crops: np.ndarray | None = None  # (T, S, S, 3) uint8, zeros where has_crop is False
    has_crop: np.ndarray | None = None  # (T,) bool
    error: tuple[str, str] | None = None  # (reason, detail)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _decode(media: str | os.PathLike, is_video: bool, policy: str) -> list[Frame]:
    """`emollama.media.decode.load_media`, its failures turned into a counted `SampleError`."""
    from emollama.media.decode import MediaError, load_media
    from emollama.media.video import VideoError

    if is_video and parse_policy(policy)[0] == "peak":
        raise ValueError(f"prepare does not support {policy!r}: peak frames depend on the priors themselves")
    try:
        return load_media(media, is_video, policy)
    except MediaError as err:
        raise SampleError(err.reason, err.detail or err.path) from None
    except (VideoError, FileNotFoundError) as err:
        raise SampleError("unreadable video", str(err)) from None


def centre_square(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in pixels of the centred square of the frame (side = the short edge)."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return x0, y0, x0 + s, y0 + s


def centre_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the centred square of the frame, resized (bilinear)."""
    x0, y0, x1, y1 = centre_square(rgb)
    sq = rgb[y0:y1, x0:x1]
    return np.asarray(Image.fromarray(sq).resize((size, size), Image.Resampling.BILINEAR))


def _boxes(regions: list) -> np.ndarray:
    """(T, 4) float64 crop regions (x0, y0, x1, y1 pixels; NaN where a frame has none) for `FacePrior.crop_boxes`."""
    return np.array([r if r is not None else (np.nan,) * 4 for r in regions], np.float64).reshape(len(regions), 4)


class CropPriorExtractor:
    """Builds the backend named by ``spec`` once (per worker) and extracts priors + crops per sample."""

    def __init__(self, spec: ExtractorSpec) -> None:
        self.spec = spec
        opts = dict(spec.options)
        if spec.name == "mediapipe":
            from dataclasses import fields

            from emollama.faces.analyzer import Analyzer, AnalyzerConfig
            from emollama.faces.detect import DetectorConfig
            from emollama.priors.from_faces import build_prior_extractor

            det_names = {f.name for f in fields(DetectorConfig)}
            det = DetectorConfig(**{k: v for k, v in opts.items() if k in det_names})
            known = det_names | {"attributes"}
            unknown = sorted(set(opts) - known)
            if unknown:
                raise KeyError(f"mediapipe: unknown option(s) {unknown}; available: {sorted(known)}")
            cfg = AnalyzerConfig(detector=det, crop=spec.crop, attributes=bool(opts.get("attributes", True)),
                                 expression=False)
            self.backend = build_prior_extractor("mediapipe", analyzer=Analyzer(cfg))
        else:
            from emollama.priors.from_faces import build_prior_extractor

            self.backend = build_prior_extractor(spec.name, **opts)
        self.delay = float(os.environ.get(DELAY_ENV, "0") or 0)

    def __call__(self, media: str | os.PathLike, is_video: bool, policy: str) -> Extraction:
        """Never raises for a per-sample problem: it comes back as ``Extraction.error``."""
        t0 = time.perf_counter()
        crash = os.environ.get(CRASH_ENV)
        if crash and crash in str(media):
            os._exit(70)  # simulates a segfault in a native backend
        try:
            out = self._extract(_decode(media, is_video, policy), is_video)
        except SampleError as err:
            out = Extraction(error=(err.reason, err.detail))
        except Exception as err:  # a backend bug on one sample must not abort a 100k-sample run)
            logger.exception("extraction failed on %s", media)
            out = Extraction(error=(f"extractor error: {type(err).__name__}", str(err)))
        if self.delay:
            time.sleep(self.delay)
        out.seconds = time.perf_counter() - t0
        return out

    def _extract(self, decoded: list[Frame], is_video: bool) -> Extraction:
        frames = [f.rgb for f in decoded]  # (H, W, 3) uint8
        ts = [int(round(1000 * f.time_s)) for f in decoded]  # milliseconds
        if hasattr(self.backend, "analyzer"):
            return self._with_analyzer(frames, ts, is_video)
        from emollama.priors.from_faces import prior_from_results

        if is_video:
            prior = self.backend.extract_video(frames, ts)
        else:
            faces = self.backend.extract(frames[0])
            prior = faces[0] if faces else prior_from_results([None])  # no face: a valid all-False entry
            prior.meta = dict(prior.meta, faces=len(faces))
        prior.crops = None
        valid = np.ones(prior.num_frames, bool) if prior.valid is None else np.asarray(prior.valid, bool)
        size = self.spec.crop.size
        crops = np.stack([centre_crop(f, size) if v else np.zeros((size, size, 3), np.uint8)
                          for f, v in zip(frames, valid, strict=True)])
        prior.crop_boxes = _boxes([centre_square(f) if v else None for f, v in zip(frames, valid, strict=True)])
        return Extraction(prior, crops, valid)

    def _with_analyzer(self, frames: list[np.ndarray], ts: list[int], is_video: bool) -> Extraction:
        from emollama.priors.from_faces import prior_from_results

        analyzer = self.backend.analyzer
        if is_video:
            # a fresh VIDEO-mode landmarker per clip (another worker's previous clip must not change this one's
            # priors), timestamps made strictly increasing: the pipeline's one VIDEO-mode loop
            picked = [faces[0] if faces else None
                      for faces in video_faces(((f, ts[i], i) for i, f in enumerate(frames)), analyzer)]
            n_faces = sum(p is not None for p in picked)
        else:
            results = analyzer.analyze_image(frames[0])
            picked, n_faces = [results[0] if results else None], len(results)
        prior = prior_from_results(picked)
        prior.meta = dict(prior.meta, faces=n_faces)
        c: CropConfig = analyzer.cfg.crop
        crops = np.stack([p.crop if p is not None and p.crop is not None else np.zeros((c.size, c.size, 3), np.uint8)
                          for p in picked])
        has = np.array([p is not None and p.crop is not None for p in picked], bool)
        # the region each crop covers (= what the landmarks are normalised to): training cuts the same crop from media
        prior.crop_boxes = _boxes([p.crop_box.xyxy if ok and p.crop_box is not None else None
                                   for p, ok in zip(picked, has, strict=True)])
        return Extraction(prior, crops, has)
