"""FaceXFormer port: shapes, released key layout, checkpoint round trip, Swin parity with transformers, extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.numerics import assert_close_numerics

from emollama.faces.facexformer import (
    IMAGENET_MEAN,
    TASK_TOKENS,
    FaceXFormer,
    FaceXFormerConfig,
    FaceXFormerExtractor,
    crop_face,
    landmarks_to_pixels,
    load_facexformer,
    to_pixel_values,
)
from emollama.faces.swin import SwinConfig, SwinFeatures

TINY = FaceXFormerConfig.tiny()
F32 = torch.float32  # tolerance unit for float64 parity runs: "agree to float32 precision"


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return FaceXFormer(TINY).eval()


def test_tiny_forward_shapes(tiny_model):
    assert sum(p.numel() for p in tiny_model.parameters()) < 100_000
    with torch.no_grad():
        out = tiny_model(torch.randn(2, 3, 32, 32))
    d, m = TINY.dim, TINY.map_size
    expected = {
        "face_map": (2, d, m, m),
        "refined_map": (2, d, m, m),
        "landmarks": (2, 136),
        "pose": (2, 3),
        "attribute": (2, 40),
        "visibility": (2, 29),
        "age": (2, 8),
        "gender": (2, 2),
        "race": (2, 5),
        "segmentation": (2, 11, 32, 32),
    }
    assert {k: tuple(v.shape) for k, v in out.items()} == expected


def test_multiscale_stage_outputs(tiny_model):
    stages = tiny_model.backbone[0].stage_outputs(torch.randn(1, 3, 32, 32))
    assert [tuple(s.shape) for s in stages] == [(1, 8, 8, 4), (1, 4, 4, 8), (1, 2, 2, 16), (1, 1, 1, 32)]


def test_released_key_layout_and_shapes():
    with torch.device("meta"):  # full Swin-B shape without allocating 92M parameters
        model = FaceXFormer()
    sd = model.state_dict()
    prefixes = {k.split(".")[0] if not k.startswith("face_decoder") else ".".join(k.split(".")[:2]) for k in sd}
    heads = {f"face_decoder.{t}_prediction_head" for t in TASK_TOKENS}
    tokens = {f"face_decoder.{t}_token" for t in TASK_TOKENS}
    assert prefixes == {
        "backbone",
        "linear_c",
        "linear_fuse",
        "pe_layer",
        "face_decoder.transformer",
        "face_decoder.mask_tokens",
        "face_decoder.output_upscaling",
        "face_decoder.output_hypernetwork_mlps",
        *heads,
        *tokens,
    }
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["backbone.0.0.0.weight"] == (128, 3, 4, 4)
    assert shapes["backbone.0.1.0.attn.relative_position_bias_table"] == (169, 4)
    assert shapes["backbone.0.1.0.attn.relative_position_index"] == (2401,)
    assert shapes["backbone.0.1.0.mlp.0.weight"] == (512, 128) and shapes["backbone.0.1.0.mlp.3.weight"] == (128, 512)
    assert shapes["backbone.0.2.reduction.weight"] == (256, 512) and shapes["backbone.0.2.norm.weight"] == (512,)
    assert "backbone.0.5.17.attn.qkv.weight" in shapes and "backbone.0.5.18.attn.qkv.weight" not in shapes
    assert shapes["backbone.0.7.1.attn.relative_position_bias_table"] == (169, 32)
    assert shapes["backbone.1.weight"] == (1024,)
    assert [shapes[f"linear_c.{i}.proj.weight"] for i in range(4)] == [(256, c) for c in (128, 256, 512, 1024)]
    assert shapes["linear_fuse.weight"] == (256, 1024, 1, 1) and "linear_fuse.bias" not in shapes
    assert shapes["pe_layer.positional_encoding_gaussian_matrix"] == (2, 128)
    assert shapes["face_decoder.mask_tokens.weight"] == (11, 256)
    assert all(shapes[f"{t}.weight"] == (1, 256) for t in tokens)
    sizes = {"landmarks": 136, "pose": 3, "attribute": 40, "visibility": 29, "age": 8, "gender": 2, "race": 5}
    for task, size in sizes.items():
        assert shapes[f"face_decoder.{task}_prediction_head.layers.2.weight"] == (size, 256)
    assert shapes["face_decoder.output_hypernetwork_mlps.layers.2.weight"] == (32, 256)
    assert shapes["face_decoder.output_upscaling.0.weight"] == (256, 64, 2, 2)
    assert shapes["face_decoder.output_upscaling.3.weight"] == (64, 32, 2, 2)
    t = "face_decoder.transformer."
    assert shapes[t + "layers.0.self_attn.q_proj.weight"] == (256, 256)
    assert shapes[t + "layers.1.cross_attn_token_to_image.q_proj.weight"] == (128, 256)  # downsample rate 2
    assert shapes[t + "layers.1.mlp.lin1.weight"] == (2048, 256) and shapes[t + "layers.0.norm4.weight"] == (256,)
    assert shapes[t + "final_attn_token_to_image.out_proj.weight"] == (256, 128) and t + "norm_final_attn.bias" in sd
    # torchvision swin_b has 87,768,224 parameters, of which 1,025,000 are the ImageNet head we drop
    assert sum(p.numel() for p in model.backbone.parameters()) == 87_768_224 - 1_025_000


def test_checkpoint_round_trip_in_released_layout(tmp_path, tiny_model):
    path = tmp_path / "model.pt"
    torch.save({"state_dict_backbone": tiny_model.state_dict(), "epoch": 12}, path)
    torch.manual_seed(1)  # a fresh model has a different random PE matrix, so equality proves it was loaded
    loaded = load_facexformer(path, TINY)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, b = tiny_model(x), loaded(x)
        fresh = FaceXFormer(TINY).eval()(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert not torch.allclose(a["landmarks"], fresh["landmarks"])


def test_ddp_prefix_is_stripped(tmp_path, tiny_model):
    path = tmp_path / "ddp.pt"
    torch.save({"state_dict_backbone": {f"module.{k}": v for k, v in tiny_model.state_dict().items()}}, path)
    load_facexformer(path, TINY)


def test_loader_errors_name_the_keys(tmp_path, tiny_model):
    sd = tiny_model.state_dict()
    sd["linear_fuse.weight_typo"] = sd.pop("linear_fuse.weight")
    sd["pe_layer.positional_encoding_gaussian_matrix"] = torch.zeros(2, 3)
    path = tmp_path / "bad.pt"
    torch.save({"state_dict_backbone": sd}, path)
    with pytest.raises(ValueError) as err:
        load_facexformer(path, TINY)
    msg = str(err.value)
    assert "bad.pt" in msg and "1 missing keys" in msg and "'linear_fuse.weight'" in msg
    assert "1 unexpected keys" in msg and "linear_fuse.weight_typo" in msg
    assert "pe_layer.positional_encoding_gaussian_matrix: expected (2, 8), got (2, 3)" in msg

    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(KeyError, match="state_dict_backbone.*'model'"):
        load_facexformer(tmp_path / "other.pt", TINY)
    with pytest.raises(FileNotFoundError, match="kartiknarayan/facexformer"):
        load_facexformer(tmp_path / "missing.pt", TINY)


def test_swin_matches_transformers_swin(tmp_path):
    """Our torchvision-named Swin equals transformers' independent SwinModel on mapped weights (shifted windows)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = SwinConfig(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=2)
    ours = SwinFeatures(cfg).eval()
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.3)
    hf_cfg = transformers.SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=8,
        depths=[2, 2, 2, 2],
        num_heads=[1, 2, 2, 4],
        window_size=2,
        drop_path_rate=0.0,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
    )
    hf = transformers.SwinModel(hf_cfg, add_pooling_layer=False).eval()
    sd, new = ours.state_dict(), {}
    new["embeddings.patch_embeddings.projection.weight"], new["embeddings.patch_embeddings.projection.bias"] = (
        sd["0.0.weight"],
        sd["0.0.bias"],
    )
    new["embeddings.norm.weight"], new["embeddings.norm.bias"] = sd["0.2.weight"], sd["0.2.bias"]
    names = {
        "attn.proj": "attention.o_proj",
        "norm1": "layernorm_before",
        "norm2": "layernorm_after",
        "mlp.0": "mlp.fc1",
        "mlp.3": "mlp.fc2",
    }
    for i, depth in enumerate(cfg.depths):
        for j in range(depth):
            o, h = f"{2 * i + 1}.{j}.", f"encoder.layers.{i}.blocks.{j}."
            for t in ("weight", "bias"):
                for ours_name, hf_name in names.items():
                    new[f"{h}{hf_name}.{t}"] = sd[f"{o}{ours_name}.{t}"]
                for part, tensor in zip("qkv", sd[f"{o}attn.qkv.{t}"].chunk(3), strict=True):
                    new[f"{h}attention.{part}_proj.{t}"] = tensor
            new[h + "attention.relative_position_bias.relative_position_bias_table"] = sd[
                o + "attn.relative_position_bias_table"
            ]
        if i < 3:
            for t in ("reduction.weight", "norm.weight", "norm.bias"):
                new[f"encoder.layers.{i}.downsample.{t}"] = sd[f"{2 * i + 2}.{t}"]
    missing, unexpected = hf.load_state_dict(new, strict=False)
    assert set(missing) == {"layernorm.weight", "layernorm.bias"} and not unexpected
    # two implementations sum in different orders, and std-0.3 weights amplify float32 rounding: run both in
    # float64 and require float32-level agreement (F32), which no SIMD path's float64 rounding comes near
    ours, hf, x = ours.double(), hf.double(), torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        stages = ours.stage_outputs(x)
        ref = hf(x, output_hidden_states=True).reshaped_hidden_states  # embeddings, then after each stage (merged)
        for i in range(3):
            assert_close_numerics(ours[2 * i + 2](stages[i]), ref[i + 1].permute(0, 2, 3, 1), dtype=F32, msg=f"{i}:")
    assert_close_numerics(stages[3], ref[4].permute(0, 2, 3, 1), dtype=F32, msg="stage 3:")


def test_two_way_transformer_matches_transformers_sam():
    """The decoder's TwoWayTransformer equals transformers' independent SAM port (names differ only in 'layer_norm')."""
    pytest.importorskip("transformers")
    from transformers import SamMaskDecoderConfig
    from transformers.models.sam.modeling_sam import SamTwoWayTransformer

    from emollama.faces.facexformer import TwoWayTransformer

    ours = TwoWayTransformer(TINY).eval()
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.3)
    hf_cfg = SamMaskDecoderConfig(
        hidden_size=TINY.dim,
        num_hidden_layers=TINY.decoder_depth,
        num_attention_heads=TINY.decoder_heads,
        mlp_dim=TINY.decoder_mlp_dim,
        attention_downsample_rate=TINY.attention_downsample,
        layer_norm_eps=1e-5,  # segment_anything's blocks use nn.LayerNorm's default; the HF port defaults to 1e-6
    )
    hf_cfg._attn_implementation = "eager"
    hf = SamTwoWayTransformer(hf_cfg).eval()
    renamed = {k.replace("norm", "layer_norm"): v for k, v in ours.state_dict().items()}
    hf.load_state_dict(renamed, strict=True)
    # two implementations, std-0.3 weights: run both in float64 and require float32-level agreement (F32)
    ours, hf = ours.double(), hf.double()
    image, pe, tokens = (torch.randn(*s, dtype=torch.float64) for s in ((2, TINY.dim, 8, 8), (2, TINY.dim, 8, 8),
                                                                         (2, 18, TINY.dim)))
    with torch.no_grad():
        q, k = ours(image, pe, tokens)
        hq, hk = hf(
            point_embeddings=tokens[:, None],
            image_embeddings=image,
            image_positional_embeddings=pe,
            attention_similarity=None,
        )
    assert_close_numerics(q, hq[:, 0], dtype=F32, msg="queries:")
    assert_close_numerics(k, hk[:, 0], dtype=F32, msg="keys:")


def test_random_fourier_pe_matches_the_formula(tiny_model):
    pe = tiny_model.pe_layer(2, 3)  # (D, h, w)
    m = tiny_model.pe_layer.positional_encoding_gaussian_matrix
    i, j = 1, 2  # row (y) 1 of 2, column (x) 2 of 3; pixel centres normalised to [0, 1], then to [-1, 1]
    xy = torch.tensor([(j + 0.5) / 3, (i + 0.5) / 2]) * 2 - 1
    proj = 2 * torch.pi * (xy @ m)
    # sin/cos round relative to their argument, which the module computes as a grid matmul, we as one vector
    assert_close_numerics(pe[:, i, j], torch.cat([proj.sin(), proj.cos()]), scale=proj.abs().max().item())


def test_config_rejects_reordered_heads():
    with pytest.raises(ValueError, match="task tokens"):
        FaceXFormerConfig(head_sizes=(("pose", 3), ("landmarks", 136)))


def test_landmark_decoding_convention():
    px = landmarks_to_pixels(torch.tensor([[-1.0, 1.0, 0.0, 0.0]]), 224)
    assert px.tolist() == [[[-0.5, 223.5], [111.5, 111.5]]]  # align_corners=False: edges of the edge pixels


def test_crop_face_margin_and_clipping():
    img = np.zeros((200, 300, 3), np.uint8)
    crop, box = crop_face(img, (40, 40, 80, 80))
    assert box == (30, 30, 90, 90) and crop.size == (60, 60)
    _, box = crop_face(img, (0, 150, 60, 210))
    assert box == (0, 135, 75, 200)
    with pytest.raises(ValueError, match="empty face box"):
        crop_face(img, (400, 10, 450, 60))


def test_to_pixel_values_resizes_and_normalises():
    mean_rgb = np.full((30, 50, 3), [round(m * 255) for m in IMAGENET_MEAN], np.uint8)
    pv = to_pixel_values(mean_rgb, 32)
    assert pv.shape == (3, 32, 32) and pv.dtype == torch.float32 and pv.abs().max() < 0.02


def test_extractor_gives_facepriors(tiny_model):
    from emollama.faces.contract import FacePrior

    ex = FaceXFormerExtractor(tiny_model)
    img = (np.random.default_rng(0).random((80, 100, 3)) * 255).astype(np.uint8)
    priors = ex.extract(img, [(10, 10, 50, 60), (40, 20, 90, 70)])
    assert len(priors) == 2
    p = priors[0]
    prior = FacePrior(**p)
    assert prior.num_frames == 1
    assert p["landmarks"].shape == (1, 68, 2) and p["embedding"].shape == (1, TINY.dim)
    assert p["age_probs"].shape == (1, 8) and p["gender_probs"].shape == (1, 2) and p["race_probs"].shape == (1, 5)
    assert np.allclose(p["age_probs"].sum(-1), 1.0) and p["blendshapes"].shape == (1, 52)
    meta = p["meta"]
    assert meta["label_maps"] == {"age": "[Unknown]", "gender": "[Unknown]", "race": "[Unknown]"}
    assert meta["local_features"].shape == (68, TINY.dim) and meta["region_features"].shape == (9, TINY.dim)
    # same crop through the raw model: landmarks in [0, 1] = (raw + 1) / 2; pose reordered to yaw, pitch, roll
    crop, box = crop_face(img, (10, 10, 50, 60))
    with torch.no_grad():
        raw = tiny_model(to_pixel_values(crop, 32)[None])
    # the extractor ran both crops as one batch, this is the first alone: equal up to float32 rounding
    assert_close_numerics(p["landmarks"][0], (raw["landmarks"].view(68, 2) + 1) / 2, msg="landmarks:")
    pitch, yaw, roll = raw["pose"][0].tolist()
    assert_close_numerics(p["pose"][0], [yaw, pitch, roll], dtype=F32, msg="pose:")
    assert_close_numerics(p["embedding"][0], raw["face_map"].mean((2, 3))[0], msg="embedding:")
    x0, y0, x1, y1 = meta["crop_box"]
    assert_close_numerics(meta["landmarks_image"], p["landmarks"][0] * [x1 - x0, y1 - y0] + [x0, y0], dtype=F32)
    assert ex.extract(img, []) == []


@pytest.mark.slow
def test_released_checkpoint_if_provided():
    """Real weights: set EMOLLAMA_FACEXFORMER_CKPT=/path/to/ckpts/model.pt (never downloaded by tests)."""
    import os

    path = os.environ.get("EMOLLAMA_FACEXFORMER_CKPT")
    if not path:
        pytest.skip("set EMOLLAMA_FACEXFORMER_CKPT to the released ckpts/model.pt to run this test")
    ex = FaceXFormerExtractor.from_checkpoint(path)
    face = np.full((224, 224, 3), 128, np.uint8)
    prior = ex.extract_crop(face)
    assert prior["landmarks"].shape == (1, 68, 2) and prior["embedding"].shape == (1, 256)
    assert np.isfinite(prior["landmarks"]).all() and np.isfinite(prior["pose"]).all()
