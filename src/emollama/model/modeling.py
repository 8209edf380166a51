"""`EmoLlamaForConditionalGeneration`: vision tower -> LLaMA-VID tokens + face tokens -> causal LM.

The processor expands `<image>`/`<video>`/`<face>` into the exact number of placeholder tokens
(`emollama.model.tokens`); `forward` computes the features, checks the counts and scatters them into the
LM's input embeddings. Pixels and priors are consumed at prefill only.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutputWithPast

from emollama.model import tokens
from emollama.model.configuration import EmoLlamaConfig
from emollama.model.context import LlamaVidTokens
from emollama.model.face_mining import FaceInfoMining
from emollama.model.towers import build_vision_tower

logger = logging.getLogger(__name__)

MULTIMODAL_KWARGS = (
    "pixel_values",
    "media_frame_counts",
    "visual_media_index",
    "qformer_input_ids",
    "qformer_attention_mask",
    "face_prior_values",
    "face_landmarks",
    "face_pixel_values",
    "face_frame_counts",
    "face_frame_mask",
    "face_qformer_input_ids",
    "face_qformer_attention_mask",
)


class EmoLlamaPreTrainedModel(PreTrainedModel):
    config_class = EmoLlamaConfig
    config: EmoLlamaConfig
    base_model_prefix = "emollama"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _no_split_modules = ["LlamaDecoderLayer", "Blip2EncoderLayer", "InstructBlipQFormerLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, LlamaVidTokens):
            init.normal_(module.vlm_att_query, mean=0.0, std=std)  # LLaMA-VID: N(0, 0.02)
        elif isinstance(module, FaceInfoMining):
            init.normal_(module.query, mean=0.0, std=std)


class EmoLlamaForConditionalGeneration(EmoLlamaPreTrainedModel, GenerationMixin):
    """EMO-LLaMA. See `forward` for the inputs the processor produces."""

    def __init__(self, config: EmoLlamaConfig) -> None:
        super().__init__(config)
        self.vision_tower = build_vision_tower(config.vision_config, config.vision_feature_layer)
        self.llamavid = LlamaVidTokens(config)
        self.face_mining = (
            FaceInfoMining(config.face_config, config.vision_config.hidden_size, config.text_config.hidden_size)
            if config.face_config.enabled
            else None
        )
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.vision_tower.requires_grad_(False)  # frozen in every EMO-LLaMA stage
        self.post_init()

    # --- plumbing expected by transformers / peft -------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def get_decoder(self) -> nn.Module:
        return self.language_model.get_decoder()

    # --- features ----------------------------------------------------------------------------------------
    def encode_frames(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(F, 3, H, W) -> (F, 1 + P, Dv) raw vision features; no gradient while the tower is frozen."""
        pixel_values = pixel_values.to(dtype=self.vision_dtype)
        if any(p.requires_grad for p in self.vision_tower.parameters()):
            return self.vision_tower(pixel_values)
        with torch.no_grad():
            return self.vision_tower(pixel_values)

    @property
    def vision_dtype(self) -> torch.dtype:
        return next(self.vision_tower.parameters()).dtype

    def get_visual_tokens(
        self,
        pixel_values: torch.Tensor,
        media_frame_counts: torch.Tensor,
        qformer_input_ids: torch.Tensor,
        qformer_attention_mask: torch.Tensor,
        visual_media_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """LLaMA-VID tokens of V visual placeholders over M media items (images are 1-frame videos).

        The vision tower runs once per frame; the Q-Former once per (placeholder prompt x frame), so a media item
        repeated in a later turn gets context tokens guided by that turn's text (SPEC §2.5, §2.8).

        Args:
            pixel_values: (F, 3, H, W) frames of all media, in order; F = media_frame_counts.sum().
            media_frame_counts: (M,) frames per media item.
            qformer_input_ids / qformer_attention_mask: (V, L) prompt of the turn holding each placeholder.
            visual_media_index: (V,) media item of each placeholder; None = one placeholder per item (V = M).
        Returns:
            (sum over placeholders of frames * (1 + C), Dt) tokens in placeholder order, frames in time order,
            [ctx, content...] per frame.
        """
        feats = self.encode_frames(pixel_values)  # (F, 1 + P, Dv)
        counts = media_frame_counts.cpu()
        index = torch.arange(len(counts)) if visual_media_index is None else visual_media_index.cpu()
        if len(index) != qformer_input_ids.shape[0]:
            raise ValueError(f"<image>/<video>: {len(index)} placeholders but {qformer_input_ids.shape[0]} Q-Former "
                             "prompts; each placeholder needs the prompt of its turn (build inputs with "
                             "EmoLlamaProcessor)")
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= len(counts)):
            raise ValueError(f"visual_media_index {index.tolist()} points outside the {len(counts)} media items")
        per = counts[index]  # (V,) frames behind each placeholder
        starts = torch.cumsum(counts, 0) - counts  # (M,) first frame of each item
        first = torch.repeat_interleave(torch.cumsum(per, 0) - per, per)  # (R,) row where each placeholder begins
        frame_rows = torch.repeat_interleave(starts[index], per) + torch.arange(int(per.sum())) - first  # (R,)
        prompt_rows = torch.repeat_interleave(torch.arange(len(index)), per).to(qformer_input_ids.device)  # (R,)
        per_frame = self.llamavid(
            feats[frame_rows.to(feats.device)].to(self.llamavid.vlm_att_ln.weight.dtype),
            qformer_input_ids[prompt_rows],
            qformer_attention_mask[prompt_rows],
        )  # (R, 1 + C, Dt)
        return per_frame.reshape(-1, per_frame.shape[-1])

    def get_face_tokens(
        self,
        face_prior_values: torch.Tensor,
        face_landmarks: torch.Tensor,
        face_frame_counts: torch.Tensor,
        face_qformer_input_ids: torch.Tensor,
        face_qformer_attention_mask: torch.Tensor,
        face_frame_mask: torch.Tensor | None = None,
        face_pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Face tokens for N `<face>` placeholders -> (N * num_queries, Dt)."""
        if self.face_mining is None:
            raise ValueError("inputs contain <face> priors but face_config.enabled is False")
        crop_feats = None
        if face_pixel_values is not None and self.config.face_config.use_crop_features:
            crop_feats = self.encode_frames(face_pixel_values).to(self.face_mining.out_proj.weight.dtype)
        out = self.face_mining(
            face_prior_values,
            face_landmarks,
            face_frame_counts,
            face_qformer_input_ids,
            face_qformer_attention_mask,
            frame_mask=face_frame_mask,
            crop_features=crop_feats,
        )
        return out.reshape(-1, out.shape[-1])

    @staticmethod
    def _scatter(embeds: torch.Tensor, input_ids: torch.Tensor, token_ids: list[int], rows: torch.Tensor, name: str,
                 detail: str) -> torch.Tensor:
        mask = tokens.placeholder_mask(input_ids, token_ids, rows.shape[0], name, detail)
        return embeds.masked_scatter(mask.unsqueeze(-1).expand_as(embeds), rows.to(embeds.dtype))

    def build_inputs_embeds(self, input_ids: torch.Tensor, **mm: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings with visual and face features scattered into their placeholders. (B, L, Dt)"""
        cfg = self.config
        embeds = self.get_input_embeddings()(input_ids)
        vis_ids = [cfg.image_token_id, cfg.video_token_id]
        if mm.get("pixel_values") is not None:
            counts, index = mm["media_frame_counts"], mm.get("visual_media_index")
            rows = self.get_visual_tokens(
                mm["pixel_values"], counts, mm["qformer_input_ids"], mm["qformer_attention_mask"], index
            )
            detail = (
                f"{len(counts)} media with frames {counts.tolist()} x {tokens.tokens_per_frame(cfg)} tokens/frame, "
                f"compress_type={cfg.compress_type!r}"
            )
            if index is not None and len(index) != len(counts):
                detail += f"; {len(index)} placeholders (media {index.tolist()}: later turns repeat a media item)"
            embeds = self._scatter(embeds, input_ids, vis_ids, rows, "<image>/<video>", detail)
        elif any(bool((input_ids == t).any()) for t in vis_ids if t is not None):
            raise ValueError("<image>/<video>: placeholder tokens present but no pixel_values were given")
        if mm.get("face_prior_values") is not None:
            rows = self.get_face_tokens(
                mm["face_prior_values"],
                mm["face_landmarks"],
                mm["face_frame_counts"],
                mm["face_qformer_input_ids"],
                mm["face_qformer_attention_mask"],
                face_frame_mask=mm.get("face_frame_mask"),
                face_pixel_values=mm.get("face_pixel_values"),
            )
            detail = f"{len(mm['face_frame_counts'])} faces x {tokens.num_face_tokens(cfg)} tokens"
            embeds = self._scatter(embeds, input_ids, [cfg.face_token_id], rows, "<face>", detail)
        elif cfg.face_token_id is not None and bool((input_ids == cfg.face_token_id).any()):
            raise ValueError("<face>: placeholder tokens present but no face priors were given")
        return embeds

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        pixel_values: torch.Tensor | None = None,
        media_frame_counts: torch.Tensor | None = None,
        qformer_input_ids: torch.Tensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        visual_media_index: torch.Tensor | None = None,
        face_prior_values: torch.Tensor | None = None,
        face_landmarks: torch.Tensor | None = None,
        face_pixel_values: torch.Tensor | None = None,
        face_frame_counts: torch.Tensor | None = None,
        face_frame_mask: torch.Tensor | None = None,
        face_qformer_input_ids: torch.Tensor | None = None,
        face_qformer_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Causal-LM forward.

        Args:
            input_ids: (B, L) with placeholders already expanded by the processor.
            labels: (B, L) with IGNORE_INDEX (-100) on everything but assistant answers (+ EOS).
            pixel_values: (F, 3, H, W); media_frame_counts: (M,); qformer_*: (V, Lq), one prompt per visual
                placeholder; visual_media_index: (V,) media item of each placeholder (None: V = M, in order).
            face_*: packed priors of N faces (see `emollama.model.face_inputs.pack_face_priors`).
        """
        if inputs_embeds is None:
            inputs_embeds = self.build_inputs_embeds(
                input_ids,
                pixel_values=pixel_values,
                media_frame_counts=media_frame_counts,
                qformer_input_ids=qformer_input_ids,
                qformer_attention_mask=qformer_attention_mask,
                visual_media_index=visual_media_index,
                face_prior_values=face_prior_values,
                face_landmarks=face_landmarks,
                face_pixel_values=face_pixel_values,
                face_frame_counts=face_frame_counts,
                face_frame_mask=face_frame_mask,
                face_qformer_input_ids=face_qformer_input_ids,
                face_qformer_attention_mask=face_qformer_attention_mask,
            )
        return self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            labels=labels,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )

    @torch.no_grad()
    def generate(self, *args, **kwargs):
        """`GenerationMixin.generate`, never emitting placeholder tokens (they would demand media mid-decode)."""
        placeholder_ids = [i for i in (self.config.image_token_id, self.config.video_token_id,
                                       self.config.face_token_id) if i is not None]
        if placeholder_ids and kwargs.get("suppress_tokens") is None:
            kwargs["suppress_tokens"] = placeholder_ids
        return super().generate(*args, **kwargs)

    def prepare_inputs_for_generation(self, input_ids, *args, is_first_iteration: bool | None = False, **kwargs):
        model_inputs = super().prepare_inputs_for_generation(
            input_ids, *args, is_first_iteration=is_first_iteration, **kwargs
        )
        if not is_first_iteration and kwargs.get("use_cache", True):
            for key in MULTIMODAL_KWARGS:  # features were spliced in at prefill; decode steps are text only
                model_inputs.pop(key, None)
        return model_inputs
