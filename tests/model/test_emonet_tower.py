"""The emonet vision tower (emollama-small): it is the analyzer's trained expression network, minus its head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollama.faces.expression_net import DEFAULT_WEIGHTS, LearnedExpression
from emollama.model.build import tower_shape, tower_shape_overrides
from emollama.model.configuration import EmoLlamaConfig, EmoNetVisionConfig
from emollama.model.towers import EmoNetTower, build_vision_tower
from emollama.model.transforms import preprocess_frames


@pytest.fixture(scope="module")
def tower() -> EmoNetTower:
    t = build_vision_tower(EmoNetVisionConfig(**tower_shape(DEFAULT_WEIGHTS)))  # the shipped file's shape
    t.load_expression_weights(DEFAULT_WEIGHTS)
    return t


def test_tower_features_through_the_shipped_head_give_the_analyzers_probabilities(tower):
    from safetensors.torch import load_file

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    grey[:, 10:38, 10:38] //= 2  # not pure noise: some structure for the network to respond to
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    feats = tower(preprocess_frames(list(rgb), tower.preprocess))  # (5, 1 + 36, 192)
    assert feats.shape == (5, 37, tower.config.hidden_size)
    assert torch.allclose(feats[:, 0], feats[:, 1:].mean(1), atol=1e-6)  # CLS slot = mean of the 6 x 6 cells
    head = {k: v.float() for k, v in load_file(str(DEFAULT_WEIGHTS)).items() if k.startswith("head.")}
    logits = feats[:, 0] @ head["head.1.weight"].T + head["head.1.bias"]
    expr = LearnedExpression()
    net = expr.load()
    # the tower reads each frame once; the analyzer also averages with the mirror image (the file's flip_tta), so
    # the reference is the network's plain pass
    assert net.cfg.flip_tta
    with torch.inference_mode():
        plain = net(torch.from_numpy(grey).float().div(255.0).unsqueeze(1))
    want = torch.softmax(plain / expr.temperature, -1).numpy()  # calibrated: logits / T
    got = torch.softmax(logits / expr.temperature, -1).detach().numpy()
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert not np.allclose(expr.predict_batch(grey), want, atol=2e-4)  # the analyzer's path does differ


def test_tower_stays_in_eval_mode_and_keeps_its_statistics(tower):
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    tower.train()
    assert not tower.training and not any(m.training for m in tower.modules())
    tower(torch.rand(4, 3, 48, 48))
    for k, v in tower.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_tower_preprocess_is_plain_zero_to_one_rgb(tower):
    pp = tower.preprocess
    assert (pp.size, pp.mean, pp.std, pp.resample) == (48, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "bilinear")


def test_wrong_shape_weights_are_refused(tmp_path):
    t = build_vision_tower(EmoNetVisionConfig(widths=[8, 16, 32, 64], hidden_size=64))
    with pytest.raises((ValueError, RuntimeError), match="emonet|size mismatch"):
        t.load_expression_weights(DEFAULT_WEIGHTS)


def test_hidden_size_must_match_the_last_stage():
    with pytest.raises(ValueError, match="widths"):
        EmoNetVisionConfig(hidden_size=128)


def test_emonet_config_round_trips_inside_the_model_config(tmp_path):
    cfg = EmoLlamaConfig(vision_config={"model_type": "emollama_emonet"},
                         qformer_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                         "intermediate_size": 64},
                         text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                      "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 100})
    assert cfg.qformer_config.encoder_hidden_size == 192  # the Q-Former cross-attends to emonet's 192 channels
    cfg.save_pretrained(tmp_path)
    back = EmoLlamaConfig.from_pretrained(tmp_path)
    assert isinstance(back.vision_config, EmoNetVisionConfig)
    assert back.vision_config.widths == [24, 48, 96, 192] and back.vision_config.image_size == 48


def test_tower_shape_comes_from_the_weights_file(tmp_path):
    """A retrained emonet may change its widths or blocks: the tower built for a file follows the file."""
    from emollama.faces._expression_torch import ExpressionNet, save_network
    from emollama.faces.expression_net import ExpressionNetConfig

    path = tmp_path / "other.safetensors"
    save_network(ExpressionNet(ExpressionNetConfig(widths=(8, 16, 24, 40), blocks=(1, 1, 2, 1))), path, {})
    shape = tower_shape(path)
    assert shape == {"widths": [8, 16, 24, 40], "blocks": [1, 1, 2, 1], "image_size": 48, "hidden_size": 40}
    assert tower_shape_overrides(path)[0] == "vision_config.widths=[8, 16, 24, 40]"
    t = build_vision_tower(EmoNetVisionConfig(**shape))
    t.load_expression_weights(path)  # shapes match: no error
    assert t(torch.rand(2, 3, 48, 48)).shape == (2, 37, 40)


def test_a_file_without_a_network_config_is_refused_by_name(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "bare.safetensors"
    save_file({"head.1.weight": torch.zeros(7, 192)}, str(path))
    with pytest.raises(ValueError, match="bare.safetensors has no network config"):
        tower_shape(path)
