"""`EmoLlamaProcessor`: conversations + media + face priors -> model inputs.

It renders the conversation template, tokenizes once with offsets (labels come from character spans), and
expands each `<image>`/`<video>`/`<face>` into the count given by `emollama.model.tokens`. Each visual or face
placeholder gets the Q-Former prompt of the user turn that holds it (SPEC §2.8). With
`config.visual_tokens_per_turn`, every later user turn without a visual placeholder gets the latest one again
(LLaMA-VID's imgsp_v1 rule): the same media, re-encoded by the Q-Former with that turn's own instruction.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase

from emollama.constants import FACE_TOKEN, IGNORE_INDEX, IMAGE_TOKEN, PLACEHOLDER_TOKENS, VIDEO_TOKEN
from emollama.faces.contract import AGRAttributes, render_agr
from emollama.model import tokens
from emollama.model.configuration import EmoLlamaConfig
from emollama.model.conversation import Rendered, render_chat_template, render_vicuna_v1, validate_messages
from emollama.model.face_inputs import pack_face_priors
from emollama.model.towers import Preprocess
from emollama.model.transforms import preprocess_frames

logger = logging.getLogger(__name__)
PROCESSOR_FILE = "processor.json"
_PLACEHOLDER_RE = re.compile("|".join(re.escape(t) for t in PLACEHOLDER_TOKENS))


def qformer_prompt(text: str) -> str:
    """Turn text with placeholders and newlines removed (LLaMA-VID's Q-Former prompt)."""
    return " ".join(_PLACEHOLDER_RE.sub(" ", text).split())


@dataclass
class _Sample:
    ids: list[int]
    labels: list[int]


class EmoLlamaProcessor:
    """Build model inputs for EMO-LLaMA.

    Args:
        tokenizer: the LM tokenizer (a fast tokenizer; offsets are needed for label masking).
        qformer_tokenizer: BERT-style tokenizer of the Q-Former (left truncation).
        config: model config; placeholder ids are written into it if the tokenizer lacks them.
        preprocess: frame preprocessing of the vision tower.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        qformer_tokenizer: PreTrainedTokenizerBase,
        config: EmoLlamaConfig,
        preprocess: Preprocess | None = None,
    ) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise TypeError("EmoLlamaProcessor needs a fast LM tokenizer (offset mapping); load it with use_fast=True")
        missing = [t for t in PLACEHOLDER_TOKENS if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
            logger.info("added placeholder tokens %s to the LM tokenizer (now %d tokens)", missing, len(tokenizer))
        self.tokenizer = tokenizer
        self.qformer_tokenizer = qformer_tokenizer
        qformer_tokenizer.truncation_side = "left"
        self.config = config
        vc = config.vision_config
        self.preprocess = preprocess or Preprocess(size=vc.image_size)
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER_TOKENS}
        config.image_token_id, config.video_token_id, config.face_token_id = (
            ids[IMAGE_TOKEN],
            ids[VIDEO_TOKEN],
            ids[FACE_TOKEN],
        )
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    # --- rendering ---------------------------------------------------------------------------------------
    def render(self, messages: list[dict], add_generation_prompt: bool) -> Rendered:
        if self.config.conv_template == "vicuna_v1":
            return render_vicuna_v1(messages, add_generation_prompt, eos=self.tokenizer.eos_token or "</s>")
        return render_chat_template(self.tokenizer, messages, add_generation_prompt)

    def _with_agr(self, messages: list[dict], agr: AGRAttributes | str | None) -> list[dict]:
        sentence = agr if isinstance(agr, str) or agr is None else render_agr(agr, self.config.agr_template)
        if not sentence:
            return messages
        first = messages[0]["content"]
        m = re.match(rf"^((?:\s*(?:{_PLACEHOLDER_RE.pattern})\s*)*)", first)
        head = m.group(1) if m else ""
        out = [dict(x) for x in messages]
        out[0]["content"] = head + sentence + " " + first[len(head) :].lstrip()
        return out

    def turn_placeholders(self, messages: list[dict]) -> tuple[list[dict], set[int]]:
        """(messages, indices of the turns given a repeated placeholder) under ``config.visual_tokens_per_turn``.

        LLaMA-VID gives every human turn its own text-guided context tokens (SPEC §2.8): once a user turn has held
        `<image>`/`<video>`, each later user turn without one gets the latest tag in front (`<video>\n` + text).
        Such a repeated placeholder does not take a new media item: it stands for the latest one again, guided by
        its own turn's text. The first turn and turns that name their own media are left as they are.
        """
        if not self.config.visual_tokens_per_turn:
            return messages, set()
        out, repeats, tag = [], set(), None
        for i, m in enumerate(messages):
            if m.get("role") == "user" and isinstance(m.get("content"), str):
                own = [t for t in _PLACEHOLDER_RE.findall(m["content"]) if t != FACE_TOKEN]
                if own:
                    tag = own[-1]
                elif tag is not None:
                    m = {**m, "content": f"{tag}\n{m['content']}"}
                    repeats.add(i)
            out.append(m)
        return out, repeats

    def _tokenize(self, rendered: Rendered) -> _Sample:
        enc = self.tokenizer(rendered.text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        labels = [
            tid if any(s_tok < e_span and e_tok > s_span for s_span, e_span in rendered.spans) else IGNORE_INDEX
            for tid, (s_tok, e_tok) in zip(ids, offsets, strict=True)
        ]
        if self.config.conv_template == "vicuna_v1" and self.tokenizer.bos_token_id is not None:
            ids, labels = [self.tokenizer.bos_token_id, *ids], [IGNORE_INDEX, *labels]
        return _Sample(ids, labels)

    def conversation_ids(
        self, messages: list[dict], add_generation_prompt: bool, agr=None
    ) -> tuple[list[int], list[int]]:
        """(token ids, labels) of one text conversation before placeholder expansion, exactly as training sees it."""
        messages, _ = self.turn_placeholders(messages)
        sample = self._tokenize(self.render(self._with_agr(messages, agr), add_generation_prompt))
        return sample.ids, sample.labels

    # --- media -------------------------------------------------------------------------------------------
    def frames_of(self, item) -> list:
        """An image (PIL or (H, W, 3) uint8) -> [item]; a video (list of frames or (T, H, W, 3)) -> frames."""
        if isinstance(item, Image.Image):
            return [item]
        if isinstance(item, np.ndarray):
            return [item] if item.ndim == 3 else list(item)
        if isinstance(item, (list, tuple)) and item:
            return list(item)
        raise TypeError(f"unsupported media item {type(item).__name__}; pass a PIL image, an array or a frame list")

    def __call__(
        self,
        conversations: list[dict] | list[list[dict]],
        media: list | None = None,
        faces: list | None = None,
        agr: list | AGRAttributes | str | None = None,
        add_generation_prompt: bool = False,
        padding_side: str = "right",
        max_length: int | None = None,
    ) -> BatchFeature:
        """Build a batch.

        Args:
            conversations: one conversation (list of {"role", "content"}) or a batch of them. Content may hold
                `<image>`, `<video>` and `<face>`; each occurrence consumes the next item of `media`/`faces`.
            media: per sample, the list of media items in placeholder order (or one list for a single sample).
            faces: per sample, the list of `FacePrior`s in `<face>` order.
            agr: per sample AGR attributes (or a ready sentence), inserted at the start of the first user turn.
            add_generation_prompt: end with the assistant header, for generation.
            padding_side: 'right' for training, 'left' for batched generation.
            max_length: raise if an expanded sequence is longer (never truncates placeholders silently).
        Returns:
            BatchFeature with input_ids (B, L), attention_mask (B, L), labels (B, L), and, when present,
            pixel_values (F, 3, H, W) of the M media items, media_frame_counts (M,), one row per visual
            placeholder V >= M (repeats in later turns included): visual_media_index (V,) its media item,
            qformer_input_ids (V, Lq) and qformer_attention_mask (V, Lq) its turn's prompt; and the packed face_*
            tensors.
        """
        single = bool(conversations) and isinstance(conversations[0], dict)
        convs = [conversations] if single else list(conversations)
        n = len(convs)
        media_b = [media or []] if single else (media or [[] for _ in range(n)])
        faces_b = [faces or []] if single else (faces or [[] for _ in range(n)])
        agr_b = [agr] if single or not isinstance(agr, list) else agr
        if single is False and not isinstance(agr, list):
            agr_b = [agr] * n
        samples, frames_all, frame_counts, vis_prompts, priors, face_prompts = [], [], [], [], [], []
        vis_media: list[int] = []  # per visual placeholder: index of its media item in frame_counts
        for i, msgs in enumerate(convs):
            validate_messages(msgs)
            msgs, repeats = self.turn_placeholders(msgs)
            vis_items, face_items = list(media_b[i]), list(faces_b[i])
            n_vis = n_face = 0
            for j, m in enumerate(msgs):
                for tok in _PLACEHOLDER_RE.findall(m["content"]):
                    if m["role"] != "user":
                        raise ValueError(f"sample {i}: placeholder {tok} in an assistant message")
                    prompt = qformer_prompt(m["content"])
                    if tok == FACE_TOKEN:
                        if n_face >= len(face_items):
                            raise ValueError(
                                f"sample {i}: more <face> placeholders than face priors ({len(face_items)})"
                            )
                        priors.append(face_items[n_face])
                        face_prompts.append(prompt)
                        n_face += 1
                    elif j in repeats:  # the latest media item again, guided by this turn's prompt
                        vis_media.append(vis_media[-1])
                        vis_prompts.append(prompt)
                    else:
                        if n_vis >= len(vis_items):
                            raise ValueError(
                                f"sample {i}: more <image>/<video> placeholders than media items ({len(vis_items)})"
                            )
                        fr = self.frames_of(vis_items[n_vis])
                        if tok == IMAGE_TOKEN and len(fr) != 1:
                            raise ValueError(f"sample {i}: <image> got {len(fr)} frames; use <video> for clips")
                        frames_all.extend(fr)
                        frame_counts.append(len(fr))
                        vis_media.append(len(frame_counts) - 1)
                        vis_prompts.append(prompt)
                        n_vis += 1
            if n_vis != len(vis_items) or n_face != len(face_items):
                raise ValueError(
                    f"sample {i}: {n_vis} <image>/<video> placeholders for {len(vis_items)} media items and "
                    f"{n_face} <face> placeholders for {len(face_items)} face priors; the counts must match"
                )
            # AGR text conditions the LM only; Q-Former prompts above come from the user's own words
            samples.append(self._tokenize(self.render(self._with_agr(msgs, agr_b[i]), add_generation_prompt)))
        ph_frames = [frame_counts[k] for k in vis_media]  # frames behind each visual placeholder, in order
        out = self._expand_and_pad(samples, ph_frames, [p.num_frames for p in priors], padding_side, max_length)
        if frames_all:
            out["pixel_values"] = preprocess_frames(frames_all, self.preprocess)
            out["media_frame_counts"] = torch.tensor(frame_counts, dtype=torch.long)
            out["visual_media_index"] = torch.tensor(vis_media, dtype=torch.long)
            q = self._qformer(vis_prompts)
            out["qformer_input_ids"], out["qformer_attention_mask"] = q["input_ids"], q["attention_mask"]
        if priors:
            out.update(pack_face_priors(priors, self.config.face_config))
            q = self._qformer(face_prompts)
            out["face_qformer_input_ids"], out["face_qformer_attention_mask"] = q["input_ids"], q["attention_mask"]
        return BatchFeature(out)

    def _qformer(self, prompts: list[str]) -> dict:
        return self.qformer_tokenizer(
            prompts,
            padding="longest",
            truncation=True,
            max_length=self.config.qformer_max_length,
            return_tensors="pt",
        )

    def _expand_and_pad(
        self, samples: list[_Sample], vis_frames: list[int], face_frames: list[int], side: str, max_length: int | None
    ) -> dict[str, torch.Tensor]:
        """Each placeholder -> `tokens` copies (``vis_frames``: frames behind each visual placeholder, in order)."""
        cfg = self.config
        vis_ids = {cfg.image_token_id, cfg.video_token_id}
        vis_iter, face_iter = iter(vis_frames), iter(face_frames)
        rows_ids, rows_lab = [], []
        for s in samples:
            ids, lab = [], []
            for tid, lb in zip(s.ids, s.labels, strict=True):
                if tid in vis_ids:
                    k = tokens.num_visual_tokens(cfg, next(vis_iter))
                elif tid == cfg.face_token_id:
                    next(face_iter)
                    k = tokens.num_face_tokens(cfg)
                else:
                    ids.append(tid)
                    lab.append(lb)
                    continue
                ids.extend([tid] * k)
                lab.extend([IGNORE_INDEX] * k)
            if max_length is not None and len(ids) > max_length:
                raise ValueError(f"expanded sequence has {len(ids)} tokens > max_length={max_length}")
            rows_ids.append(ids)
            rows_lab.append(lab)
        width = max(len(r) for r in rows_ids)
        ids_t = torch.full((len(rows_ids), width), self.pad_id, dtype=torch.long)
        lab_t = torch.full_like(ids_t, IGNORE_INDEX)
        mask_t = torch.zeros_like(ids_t)
        for i, (r, lb) in enumerate(zip(rows_ids, rows_lab, strict=True)):
            sl = slice(width - len(r), width) if side == "left" else slice(0, len(r))
            ids_t[i, sl], lab_t[i, sl], mask_t[i, sl] = torch.tensor(r), torch.tensor(lb), 1
        return {"input_ids": ids_t, "attention_mask": mask_t, "labels": lab_t}

    # --- decoding / persistence --------------------------------------------------------------------------
    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write tokenizer/, qformer_tokenizer/ and processor.json (counts, preprocessing, template)."""
        path = Path(path)
        self.tokenizer.save_pretrained(path / "tokenizer")
        self.qformer_tokenizer.save_pretrained(path / "qformer_tokenizer")
        pp = self.preprocess
        meta = {
            "format": "emollama-processor/1",
            "preprocess": {"size": pp.size, "mean": pp.mean, "std": pp.std, "resample": pp.resample,
                           "pad_to_square": pp.pad_to_square},
            "conv_template": self.config.conv_template,
            "tokens_per_frame": tokens.tokens_per_frame(self.config),
            "face_tokens": tokens.num_face_tokens(self.config),
        }
        (path / PROCESSOR_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, config: EmoLlamaConfig) -> EmoLlamaProcessor:
        path = Path(path)
        meta_file = path / PROCESSOR_FILE
        if not meta_file.exists():
            raise FileNotFoundError(
                f"{meta_file} is missing; found {sorted(p.name for p in path.iterdir()) if path.exists() else []}. "
                "Save with EmoLlamaProcessor.save_pretrained (or `emollama convert`)."
            )
        meta = json.loads(meta_file.read_text())
        pp = meta["preprocess"]
        preprocess = Preprocess(pp["size"], tuple(pp["mean"]), tuple(pp["std"]), pp["resample"], pp["pad_to_square"])
        tok = AutoTokenizer.from_pretrained(path / "tokenizer")
        qtok = AutoTokenizer.from_pretrained(path / "qformer_tokenizer")
        return cls(tok, qtok, config, preprocess)
