import json

import numpy as np
import pytest
import torch

from avatar_forcing.audio.wav2vec import Wav2Vec2Features, Wav2Vec2Stream, streaming_difference
from avatar_forcing.errors import InputError

transformers = pytest.importorskip("transformers")

LAYERS, HIDDEN = 3, 16


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.Wav2Vec2Config(
        hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
        layerdrop=0.0)
    path = tmp_path_factory.mktemp("w2v")
    transformers.Wav2Vec2Model(cfg).save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="module")
def feats(folder):
    torch.set_num_threads(1)
    return Wav2Vec2Features(folder)


def audio(n: int, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_dims_come_from_the_config(feats):
    assert (feats.n_layers, feats.hidden, feats.dim) == (LAYERS, HIDDEN, LAYERS * HIDDEN)


@pytest.mark.parametrize("n", [16000, 16001, 12345, 640])
def test_shape_is_25fps(feats, n):
    out = feats.encode(audio(n))
    assert out.shape == (int(np.ceil(n * 25 / 16000)), LAYERS * HIDDEN) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_matches_transformers_when_not_resampled(feats):
    pcm = audio(8000)
    x = torch.from_numpy(pcm)[None]
    x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
    with torch.inference_mode():
        ref = feats.model(x, output_hidden_states=True).hidden_states
        n_cnn = feats.model.feature_extractor(x).shape[-1]
    assert len(ref) == LAYERS + 1
    got = feats.encode(pcm, n_frames=n_cnn)  # interpolation to the same length is the identity
    layer_major = torch.cat(ref[1:], dim=-1)[0].numpy()
    np.testing.assert_allclose(got, layer_major, atol=1e-5)
    np.testing.assert_allclose(got[:, HIDDEN:2 * HIDDEN], ref[2][0].numpy(), atol=1e-5)  # layer 2 block


def test_streaming_is_causal_and_close(feats):
    pcm = audio(16000 * 3, seed=1)
    stream = Wav2Vec2Stream(feats)
    first = np.concatenate([stream.push(pcm[i:i + 3000]) for i in range(0, 16000, 3000)])
    stream.reset()
    changed = pcm.copy()
    changed[18000:] = 0.5  # the pushes above reach sample 18000
    again = np.concatenate([stream.push(changed[i:i + 3000]) for i in range(0, 16000, 3000)])
    assert np.array_equal(first, again)  # future audio cannot change past frames
    report = streaming_difference(feats, pcm, chunk_samples=6400)
    assert report["frames"] == 75 and len(report["cosine_per_layer"]) == LAYERS
    assert np.isfinite(report["max_abs"]) and report["relative_rms"] < 1.0


def test_missing_or_incomplete_folder(tmp_path, folder):
    with pytest.raises(InputError, match="not found"):
        Wav2Vec2Features(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json.*model.safetensors"):
        Wav2Vec2Features(tmp_path / "empty")
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(InputError, match="model.safetensors"):
        Wav2Vec2Features(tmp_path / "noweights")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "other" / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(InputError, match="not wav2vec2"):
        Wav2Vec2Features(tmp_path / "other")
