"""`EmoLlamaConfig`: a composite transformers config (vision / Q-Former / text / face sub-configs).

LLaMA-VID settings (num_query, compress_type, frame policy) live at the top level; named presets live in
`emollama/configs/model/*.yaml` and are loaded by `emollama.model.presets`.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, InstructBlipQFormerConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from emollama.media.sampling import DEFAULT_POLICY

COMPRESS_HELP = "compress_type: 'mean' (1 content token/frame), 'grid:N' (N*N tokens), or None (all patches)"


@strict
class EmoLlamaFaceConfig(PreTrainedConfig):
    r"""Face Info Mining + clue aggregator (our interpretation; see docs/architecture.md).

    num_queries: learnable aggregator queries = face tokens per `<face>` placeholder.
    hidden_size / num_hidden_layers / num_attention_heads / intermediate_size: aggregator Q-Former shape.
    landmark_layout: which region table maps landmarks to facial regions ('mediapipe478', 'ibug68', 'tiny10').
    num_blendshapes / num_age_bins / num_genders / num_races / embedding_dim: widths of the prior vectors;
        0 disables an input (e.g. num_races=0 when no race predictor is installed).
    use_crop_features: pool vision-tower patch features of the face crop inside each region (local tokens) and
        over the whole crop (a global token).
    max_frames: size of the temporal position table for videos.
    region_margin: fraction of the region box added on each side before pooling.
    """

    model_type = "emollama_face"
    base_config_key = "face_config"

    enabled: bool = True
    num_queries: int = 32
    hidden_size: int = 768
    num_hidden_layers: int = 2
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    cross_attention_frequency: int = 1
    vocab_size: int = 30523
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    initializer_range: float = 0.02
    landmark_layout: str = "mediapipe478"
    num_landmarks: int = 478
    num_blendshapes: int = 52
    num_age_bins: int = 5
    num_genders: int = 2
    num_races: int = 0
    embedding_dim: int = 0
    use_crop_features: bool = True
    max_frames: int = 64
    region_margin: float = 0.15

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.num_queries < 1:
            raise ValueError(f"face_config.num_queries must be >= 1, got {self.num_queries}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"face_config.hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )

    @property
    def prior_dim(self) -> int:
        """Width of the concatenated per-frame global prior vector (blendshapes, pose, AGR, embedding)."""
        return self.num_blendshapes + 3 + self.num_age_bins + self.num_genders + self.num_races + self.embedding_dim


@strict
class EmoNetVisionConfig(PreTrainedConfig):
    r"""The trained expression CNN (`emollama.faces.expression_net`, emonet-fer2013) as a vision tower.

    widths / blocks: channels and residual blocks per stage (must match the weights); image_size: input side in px;
    hidden_size: feature width = widths[-1]. The feature map of the last stage, (image_size / 8)^2 cells, is the
    patch grid; its mean is the CLS slot.
    """

    model_type = "emollama_emonet"
    base_config_key = "vision_config"

    widths: list[int] | tuple[int, ...] = (24, 48, 96, 192)
    blocks: list[int] | tuple[int, ...] = (1, 2, 2, 2)
    image_size: int = 48
    hidden_size: int = 192
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.widths, self.blocks = list(self.widths), list(self.blocks)
        if self.hidden_size != self.widths[-1]:
            raise ValueError(f"vision_config.hidden_size={self.hidden_size} must equal widths[-1]={self.widths[-1]}")

    @property
    def patch_size(self) -> int:
        """Pixels per feature-map cell: every stage after the first halves the resolution."""
        return 2 ** (len(self.widths) - 1)


@strict
class EmoLlamaConfig(PreTrainedConfig):
    r"""EMO-LLaMA = LLaMA-VID (EVA-G + instruction-aware Q-Former + LLM) + Face Info Mining + AGR prompt.

    num_query: Q-Former queries for the context token (LLaMA-VID: 32).
    compress_type: content-token pooling per frame: 'mean', 'grid:N' or None (all patches), SPEC §2.5.
    mm_projector_type: 'linear', 'identity' or 'mlp{N}x_gelu' (LLaMA-VID: 'mlp2x_gelu').
    vision_feature_layer: hidden state used as X; -1 = raw output of the last block (EVA, no post-norm).
    frame_sampling: default video policy: 'uniform:N', 'fps:F', 'peak:N' or 'all' (emollama.media.sampling).
    qformer_max_length: Q-Former prompt length (left truncation).
    visual_tokens_per_turn: every user turn after the media gets its own visual tokens, computed from the same
        frames with that turn's text as the Q-Former instruction (LLaMA-VID, SPEC §2.8); False = only the turns
        that hold a placeholder.
    conv_template: 'vicuna_v1' (LLaMA-VID exact) or 'chat_template' (the LM tokenizer's own template).
    visual_input: what goes behind `<image>` for a photo's face, at training, in evaluation and in
        `EmoLlama.predict` alike (`emollama.model.face_inputs.visual_item`): 'frame' (the whole photo, LLaMA-VID) or
        'face' (the face's square crop with a 10 % margin, cut at the region its prior records: models whose tower
        was trained on such crops, like emonet-fer2013, whose 48 px input cannot see a face in a whole photo).
        Videos always use frames.
    agr_template: id of the AGR prompt template (emollama.faces.agr).
    image_token_id / video_token_id / face_token_id: ids of the placeholder special tokens in the LM vocabulary.
    """

    model_type = "emollama"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="blip_2_vision_model"),
        "qformer_config": InstructBlipQFormerConfig,
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "face_config": EmoLlamaFaceConfig,
    }

    vision_config: dict | PreTrainedConfig | None = None
    qformer_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    face_config: dict | PreTrainedConfig | None = None
    num_query: int = 32
    compress_type: str | None = "mean"
    mm_projector_type: str = "mlp2x_gelu"
    vision_feature_layer: int = -1
    frame_sampling: str = DEFAULT_POLICY  # decides the number of video tokens
    qformer_max_length: int = 256
    visual_tokens_per_turn: bool = True
    conv_template: str = "vicuna_v1"
    visual_input: str = "frame"
    agr_template: str = "agr_v1"
    image_token_id: int | None = None
    video_token_id: int | None = None
    face_token_id: int | None = None
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # the Q-Former cross-attends to the vision tower, so its memory width follows the tower
        self.qformer_config.encoder_hidden_size = self.vision_config.hidden_size
        self.face_config.vocab_size = self.qformer_config.vocab_size
        if not self.tie_word_embeddings and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True
        validate_compress_type(self.compress_type)
        if self.visual_input not in ("frame", "face"):
            raise ValueError(f"visual_input must be 'frame' or 'face', got {self.visual_input!r}")
        if self.conv_template not in ("vicuna_v1", "chat_template"):
            raise ValueError(f"conv_template must be 'vicuna_v1' or 'chat_template', got {self.conv_template!r}")

    @property
    def hidden_size(self) -> int:  # used by generation utilities
        return self.text_config.hidden_size


def validate_compress_type(value: str | None) -> None:
    """Raise ValueError unless ``value`` is a supported content-pooling mode."""
    if value is None or value == "mean" or value.startswith("mean"):
        return
    if value.startswith("grid:"):
        n = value.split(":", 1)[1]
        if n.isdigit() and int(n) > 0:
            return
    raise ValueError(f"invalid compress_type {value!r}; {COMPRESS_HELP}")


AutoConfig.register("emollama_face", EmoLlamaFaceConfig, exist_ok=True)
AutoConfig.register("emollama_emonet", EmoNetVisionConfig, exist_ok=True)
AutoConfig.register("emollama", EmoLlamaConfig, exist_ok=True)
