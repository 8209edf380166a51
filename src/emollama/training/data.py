"""Instruction dataset for training: LLaVA/LLaMA-VID-style records (SPEC §5.5) -> messages + media + priors.

Images and videos mix freely. Media paths are relative to a data root; a video is a file (PyAV, the `video`
extra) or a directory of frame images, decoded by the shared decoder (`emollama.media.decode.load_media`). Priors
come from a `PriorSource` (`emollama.priors.source`, as in evaluation), asked by the record's prior key. Missing
media or priors are found up front and either raise one error listing them or are skipped and counted
(`data.on_missing`). Tokenisation and padding happen in the collator, not here.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from emollama.constants import FACE_TOKEN, IMAGE_TOKEN, VIDEO_TOKEN
from emollama.faces.contract import AGRAttributes, FacePrior
from emollama.media.decode import load_media, media_item
from emollama.media.sampling import DEFAULT_POLICY
from emollama.priors.agr import agr_from_prior
from emollama.priors.providers import NullPriorSource
from emollama.priors.source import PriorRequest, PriorSource

logger = logging.getLogger(__name__)
_ROLES = {"human": "user", "gpt": "assistant", "user": "user", "assistant": "assistant"}


@dataclass
class Example:
    """One training sample before tokenisation.

    messages: [{"role", "content"}] with `<image>`/`<video>` (+ `<face>`) in the first user turn.
    media: [(H, W, 3) uint8 image] or [[(H, W, 3) uint8 frames]] (`media_item`); faces: [FacePrior] or [].
    agr: attributes for the AGR sentence (from the prior), or None.
    """

    id: str
    messages: list[dict]
    media: list
    faces: list[FacePrior]
    modality: str
    record: dict
    agr: AGRAttributes | None = None


def read_records(path: str | os.PathLike) -> list[dict]:
    """Raw records from a .jsonl file or a .json list (LLaVA style)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"instruction file {str(path)!r} does not exist")
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValueError(f"{path}: a .json instruction file must hold a list of records")
        return data
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
    return out


def _check_minimal(rec: Any, where: str) -> None:
    if not isinstance(rec, dict) or "conversations" not in rec or ("image" in rec) == ("video" in rec):
        raise ValueError(f"{where}: a record needs 'conversations' and exactly one of 'image'/'video'")


def prior_key(rec: dict) -> str:
    """The face-prior cache key of a record: its `prior_key` field, else its id."""
    return str(rec.get("prior_key") or rec["id"])


class InstructionDataset(Dataset):
    """Records -> `Example`s.

    Args:
        records: raw record dicts (see `read_records`).
        root: media root; record paths are relative to it.
        priors: a `PriorSource`; `NullPriorSource` trains without face tokens.
        frames: video frame policy (default `media.sampling.DEFAULT_POLICY`).
        face_token: insert `<face>` after the visual placeholder for records with a prior.
        on_missing: 'error' or 'skip' for missing media or priors.
        agr: 'prior' = AGR sentence from the prior's age/gender (as inference does), 'none' = no AGR text.
    """

    def __init__(self, records: list[dict], root: str | os.PathLike, priors: PriorSource | None = None, *,
                 frames: str = DEFAULT_POLICY, face_token: bool = True, on_missing: str = "error",
                 agr: str = "prior") -> None:
        self.root = Path(root)
        self.agr = agr
        self.priors = priors or NullPriorSource()
        self.frames = frames
        self.face_token = face_token and not isinstance(self.priors, NullPriorSource)
        self.skipped: Counter[str] = Counter()
        problems: list[str] = []
        kept = []
        for i, rec in enumerate(records):
            _check_minimal(rec, f"record {i}")
            rec.setdefault("id", f"record-{i}")
            reason = self._missing(rec)
            if reason:
                self.skipped[reason] += 1
                problems.append(f"{rec['id']}: {reason}")
                continue
            kept.append(rec)
        if problems and on_missing == "error":
            raise FileNotFoundError(
                f"{len(problems)} of {len(records)} records are missing inputs (root {str(self.root)!r}), e.g. "
                f"{problems[:3]}; fix the paths or set data.on_missing=skip to drop and count them")
        if problems:
            logger.warning("skipped %d of %d records: %s", len(problems), len(records), dict(self.skipped))
        self.records = kept

    def request(self, rec: dict) -> PriorRequest:
        """What the prior source is asked for a record: its prior key, and its media."""
        rel = rec.get("image") or rec["video"]
        return PriorRequest(prior_key(rec), rec["id"], self.root / rel, rel, "video" in rec)

    def _missing(self, rec: dict) -> str | None:
        rel = rec.get("image") or rec.get("video")
        if not (self.root / rel).exists():
            return "missing_media"
        if self.face_token and not self.priors.has(self.request(rec)):
            return "missing_prior"
        return None

    def __len__(self) -> int:
        return len(self.records)

    def modality(self, i: int) -> str:
        return "video" if "video" in self.records[i] else "image"

    def label(self, i: int) -> str | None:
        """The record's class name (`label.name`, or a plain string label), None when it has none."""
        lab = self.records[i].get("label")
        if isinstance(lab, dict):
            lab = lab.get("name")
        return lab if isinstance(lab, str) else None

    def length(self, i: int) -> int:
        """Cheap length proxy for grouping: words in the conversation (+ frames for videos)."""
        rec = self.records[i]
        words = sum(len(t["value"].split()) for t in rec["conversations"])
        return words + (8 if "video" in rec else 1)

    def messages(self, rec: dict, with_face: bool) -> list[dict]:
        """Record turns as processor messages; videos get `<video>`, and `<face>` follows the visual tag."""
        msgs = [{"role": _ROLES[t["from"]], "content": t["value"]} for t in rec["conversations"]]
        first = msgs[0]["content"]
        tag = VIDEO_TOKEN if "video" in rec else IMAGE_TOKEN
        if "video" in rec:
            first = first.replace(IMAGE_TOKEN, VIDEO_TOKEN, 1)  # LLaMA-VID writes <image> for clips too
        if tag not in first:
            first = f"{tag}\n{first}"  # LLaMA-VID's preprocess_multimodal moves the tag to the front
        if with_face and FACE_TOKEN not in first:
            first = first.replace(tag, f"{tag}\n{FACE_TOKEN}", 1)
        msgs[0] = {"role": "user", "content": first}
        return msgs

    def __getitem__(self, i: int) -> Example:
        rec = self.records[i]
        path, is_video = self.root / (rec.get("image") or rec["video"]), "video" in rec
        media = [media_item(load_media(path, is_video, self.frames), is_video)]
        faces = [self.priors.get(self.request(rec))] if self.face_token else []
        agr = agr_from_prior(faces[0]) if faces and self.agr == "prior" else None
        return Example(rec["id"], self.messages(rec, bool(faces)), media, faces, self.modality(i), rec, agr)
