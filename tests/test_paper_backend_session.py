"""The session with either motion backend, and a converted (small, fake) official checkpoint end to end:
convert-official -> AvatarSession / generate, with LIA latents and wav2vec2 features."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from avatar_forcing.cli import main
from avatar_forcing.errors import CheckpointError, ConfigError
from avatar_forcing.model.config import model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.model.official import export_official_state
from avatar_forcing.motion.backend import RigBackend
from avatar_forcing.motion.lia.backend import LiaBackend
from avatar_forcing.motion.lia.generator import LIA_PRESETS, Generator
from avatar_forcing.motion.lia.official import export_official_motion_autoencoder
from avatar_forcing.motion.vector import MOTION_DIM, MotionStats
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import AvatarSession, identity_stats

transformers = pytest.importorskip("transformers")

SR = 16000
HAS_RENDERER = importlib.util.find_spec("avatar_forcing.motion.renderer") is not None
W2V_LAYERS, W2V_HIDDEN = 2, 16
SMALL = dict(width=32, depth=2, heads=2, cond_dim=16, time_embed_dim=32)  # cond_heads 4 as the paper's


def small_dfot(motion_dim: int, audio_dim: int = 320, seed: int = 0) -> DFoT:
    """Every weight random (the zero-initialised output layer too), so the motion depends on conditions."""
    torch.manual_seed(seed)
    dims = dict(motion_dim=motion_dim, user_motion_dim=motion_dim, audio_dim=audio_dim)
    # the authors' architecture
    cfg = model_preset("tiny", **dims, **SMALL, user_motion_input=False, user_channels=())
    model = DFoT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    envelope = (np.sin(np.arange(n) / SR * 2 * np.pi * 3) > 0).astype(np.float32)
    return (rng.uniform(-0.5, 0.5, n) * envelope).astype(np.float32)


@pytest.fixture(scope="module")
def lia() -> LiaBackend:
    torch.manual_seed(0)
    return LiaBackend(Generator(LIA_PRESETS["tiny"]))


def run_one_block(session: AvatarSession, face: np.ndarray, with_user_frames: bool):
    """The same input on any backend: 0.4 s of both voices and (optionally) ten webcam frames."""
    session.push_avatar_audio(speech(0.4, 1), SR)
    session.push_user_audio(speech(0.4, 2), SR)
    if with_user_frames:
        for k in range(10):
            session.push_user_frame(np.ascontiguousarray(np.roll(face, 3 * k, axis=1)), k / 25)
    block = session.step()
    session.close()
    return block


@pytest.mark.parametrize("kind", ["rig", "lia"])
def test_one_session_code_path_for_both_backends(kind, lia, astronaut_face):
    torch.set_num_threads(1)
    backend = RigBackend() if kind == "rig" else lia
    dim = backend.motion_dim
    assert dim == (MOTION_DIM if kind == "rig" else LIA_PRESETS["tiny"].style_dim)
    render = kind == "lia" or HAS_RENDERER  # the rig's renderer may not be installed in this tree yet
    model = small_dfot(dim)
    stats = identity_stats(dim) if kind == "lia" else MotionStats()

    def session(frames: bool):
        opts = SessionOptions(nfe=2, output_size=64, render=render, device="cpu")
        reference = None if render else np.zeros(dim, np.float32)
        s = AvatarSession(model=model, stats=stats, backend=backend, portrait=astronaut_face, options=opts,
                          reference_motion=reference)
        assert s.motion_dim == dim and s.backend is backend
        return s, run_one_block(s, astronaut_face, frames)

    s, block = session(True)
    assert block.motion.shape == (10, dim) and np.isfinite(block.motion).all()
    assert s.user_motion.dropped == 0 and s._encoder is None  # frame encoder made on demand, closed
    if render:
        # LIA: squares of output_size; the rig (a backend given as it is): the portrait's own framing
        expected = (64, 64) if kind == "lia" else astronaut_face.shape[:2]
        assert block.frames.shape == (10, *expected, 3) and block.frames.dtype == np.uint8
        assert s.frame_shape == expected
        if kind == "lia":
            reference = lia.encode_portrait(astronaut_face).reference_motion
            np.testing.assert_allclose(s.reference_motion, reference, atol=1e-6)
    _, without = session(False)
    assert not np.allclose(block.motion, without.motion)  # the encoded webcam frames condition the DFoT
    with pytest.raises(CheckpointError, match="do not belong together"):  # a 58-d model with LIA latents
        AvatarSession(model=small_dfot(MOTION_DIM), stats=MotionStats(), backend=lia,
                      options=SessionOptions(render=False), reference_motion=np.zeros(lia.motion_dim))


def test_bfloat16_autocast_and_device_options(lia, astronaut_face):
    torch.set_num_threads(1)
    dim = lia.motion_dim
    model = small_dfot(dim)

    def motion(dtype: str) -> np.ndarray:
        opts = SessionOptions(nfe=2, render=False, dtype=dtype, device="cpu")
        s = AvatarSession(model=model, stats=identity_stats(dim), backend=lia, options=opts,
                          reference_motion=np.zeros(dim, np.float32))
        return run_one_block(s, astronaut_face, False).motion

    full, half = motion("float32"), motion("bfloat16")
    assert np.isfinite(half).all() and not np.array_equal(full, half)  # bf16 matmuls really ran
    assert np.abs(full - half).max() < 0.25 * np.abs(full).max()
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no GPU"):
            SessionOptions(device="cuda").validate()
    with pytest.raises(ConfigError, match="unknown device"):
        SessionOptions(device="tpu").validate()


# --- a converted official checkpoint -------------------------------------------------------------------


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """Fake authors' files with small shapes (flat name -> tensor dicts saved with torch.save), a small
    wav2vec2 folder, and their conversion."""
    root = tmp_path_factory.mktemp("official")
    torch.manual_seed(0)
    w2v = transformers.Wav2Vec2Config(
        hidden_size=W2V_HIDDEN, num_hidden_layers=W2V_LAYERS, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(w2v).save_pretrained(root / "w2v", safe_serialization=True)
    generator = Generator(LIA_PRESETS["tiny"])
    flow = small_dfot(generator.cfg.style_dim, audio_dim=W2V_LAYERS * W2V_HIDDEN, seed=1)
    torch.save(export_official_state(flow), root / "flow_transformer.pth")
    torch.save(export_official_motion_autoencoder(generator), root / "motion_autoencoder.pth")
    ckpt = root / "ckpt"
    code = main(["convert-official", "--flow", str(root / "flow_transformer.pth"), "--motion",
                 str(root / "motion_autoencoder.pth"), "--wav2vec", str(root / "w2v"), "--heads", "2",
                 "-o", str(ckpt)])
    assert code == 0
    return {"root": root, "ckpt": ckpt, "flow": flow, "generator": generator}


def test_converted_checkpoint_records_everything(official):
    meta = json.loads((official["ckpt"] / "config.json").read_text())
    extra = meta["extra"]
    assert extra["audio_features"] == "wav2vec2" and extra["sampler"] == {"schedule": "official"}
    assert extra["motion"]["backend"] == "lia" and extra["motion"]["file"] == "motion_autoencoder.safetensors"
    dim = official["generator"].cfg.style_dim
    assert meta["stats"]["mean"] == [0.0] * dim and meta["stats"]["std"] == [1.0] * dim


def test_converted_checkpoint_streams_in_a_session(official, astronaut):
    torch.set_num_threads(1)
    opts = SessionOptions(nfe=3, output_size=48, device="cpu")  # the authors' schedule needs >= 3 steps
    session = AvatarSession(official["ckpt"], astronaut, opts)
    assert isinstance(session.backend, LiaBackend) and session.audio_features.name == "wav2vec2"
    assert session.generator.cfg.schedule == "official"
    pairs = ((session.model, official["flow"]), (session.backend.generator, official["generator"]))
    for ours, theirs in pairs:
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
            assert torch.equal(a, b), name  # the conversion round-trips exactly
    dim = official["generator"].cfg.style_dim
    reference = LiaBackend(official["generator"]).encode_portrait(astronaut).reference_motion
    np.testing.assert_allclose(session.reference_motion, reference, atol=1e-6)  # the portrait's own latent
    block = run_one_block(session, astronaut, True)
    assert block.motion.shape == (10, dim) and np.isfinite(block.motion).all()
    assert block.frames.shape == (10, 48, 48, 3)  # the LIA's 64 px frames resized to output_size
    assert block.timings.features_ms > 0 and block.timings.render_ms > 0


def test_converted_checkpoint_needs_its_wav2vec_folder(official, tmp_path):
    import shutil

    moved = tmp_path / "ckpt"
    shutil.copytree(official["ckpt"], moved)
    meta = json.loads((moved / "config.json").read_text())
    meta["extra"]["wav2vec"] = None  # converted without --wav2vec
    (moved / "config.json").write_text(json.dumps(meta))
    opts = SessionOptions(nfe=3, render=False, device="cpu")
    with pytest.raises(CheckpointError, match="wav2vec2 folder"):
        AvatarSession(moved, reference_motion=np.zeros(64, np.float32), options=opts)
    opts.wav2vec = str(official["root"] / "w2v")
    session = AvatarSession(moved, reference_motion=np.zeros(64, np.float32), options=opts)
    assert session.audio_features.dim == W2V_LAYERS * W2V_HIDDEN
    session.close()


def test_generate_with_a_converted_checkpoint(official, astronaut, tmp_path):
    from avatar_forcing.errors import InputError
    from avatar_forcing.media.video import read_video
    from avatar_forcing.stream.generate import generate

    torch.set_num_threads(1)
    opts = SessionOptions(nfe=3, output_size=32, device="cpu")
    user_motion = np.random.default_rng(0).normal(0, 0.1, (12, 64)).astype(np.float32)
    result = generate(astronaut, speech(0.5, 3), tmp_path / "out.mp4", checkpoint=official["ckpt"],
                      user_motion=user_motion, options=opts, side_by_side=True, progress=False)
    assert result.frames == 13 and result.motion.shape == (13, 64)
    frames = [rgb for rgb, _ in read_video(tmp_path / "out.mp4")]
    assert len(frames) == 13 and frames[0].shape == (32, 64, 3)  # user panel (LIA-decoded) + avatar
    with pytest.raises(InputError, match="ARKit"):
        generate(astronaut, speech(0.2), tmp_path / "x.mp4", checkpoint=official["ckpt"], options=opts,
                 export_prefix=tmp_path / "curves", progress=False)
