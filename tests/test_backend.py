"""Both motion backends through the one MotionBackend interface."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from avatar_forcing.errors import CheckpointError, InputError
from avatar_forcing.motion.backend import MotionBackend, PortraitIdentity, RigBackend, backend_from_record
from avatar_forcing.motion.lia.backend import LiaBackend
from avatar_forcing.motion.lia.generator import LIA_PRESETS, Generator, save_generator
from avatar_forcing.motion.vector import MOTION_DIM

HAS_RENDERER = importlib.util.find_spec("avatar_forcing.motion.renderer") is not None


@pytest.fixture(scope="module")
def lia() -> LiaBackend:
    torch.manual_seed(0)
    return LiaBackend(Generator(LIA_PRESETS["tiny"]))


def test_lia_backend_interface(lia, astronaut):
    torch.set_num_threads(1)
    assert isinstance(lia, MotionBackend) and lia.name == "lia"
    assert lia.motion_dim == LIA_PRESETS["tiny"].style_dim
    identity = lia.encode_portrait(astronaut)
    assert isinstance(identity, PortraitIdentity) and identity.reference_motion.shape == (lia.motion_dim,)
    frames = [np.roll(astronaut, s, axis=1) for s in (0, 8, 16)]
    motion = lia.encode_frames(frames)
    assert motion.shape == (3, lia.motion_dim) and motion.dtype == np.float32
    # the portrait itself encodes to its reference motion, and motion stays in the direction span
    np.testing.assert_allclose(motion[0], identity.reference_motion, atol=1e-5)
    q = lia.generator.dec.direction.basis().detach().numpy()
    np.testing.assert_allclose(motion @ q @ q.T, motion, atol=1e-5)
    video = lia.decode(identity, motion)
    assert video.shape == (3, 64, 64, 3) and video.dtype == np.uint8
    assert not np.array_equal(video[0], video[2])  # different motion, different frame
    streamed = lia.frame_encoder().encode(frames[1], 40)
    np.testing.assert_allclose(streamed, motion[1], atol=1e-5)
    with pytest.raises(InputError):
        lia.decode(identity, np.zeros((2, MOTION_DIM), np.float32))  # rig-sized motion
    with pytest.raises(InputError):
        lia.encode_frames([astronaut.astype(np.float32)])


def test_lia_backend_from_checkpoint_record(lia, tmp_path):
    save_generator(tmp_path / "mae.safetensors", lia.generator)
    backend = backend_from_record({"backend": "lia", "file": "mae.safetensors"}, tmp_path)
    assert isinstance(backend, LiaBackend) and backend.motion_dim == lia.motion_dim
    assert isinstance(backend_from_record(None), RigBackend)
    with pytest.raises(CheckpointError, match="unknown motion backend"):
        backend_from_record({"backend": "nerf"})
    with pytest.raises(CheckpointError, match="does not exist"):
        backend_from_record({"backend": "lia", "file": "missing.safetensors"}, tmp_path)


def test_rig_backend_encodes_frames(astronaut_face):
    rig = RigBackend()
    assert isinstance(rig, MotionBackend) and rig.name == "rig" and rig.motion_dim == MOTION_DIM
    motion = rig.encode_frames([astronaut_face, astronaut_face])
    assert motion.shape == (2, MOTION_DIM)
    encoder = rig.frame_encoder()
    try:
        row = encoder.encode(astronaut_face, 0)
        assert row is not None and row.shape == (MOTION_DIM,)
        assert encoder.encode(np.zeros((64, 64, 3), np.uint8), 40) is None  # no face
    finally:
        encoder.close()


@pytest.mark.skipif(not HAS_RENDERER, reason="motion/renderer.py is not in the tree yet")
def test_rig_backend_round_trip(astronaut):
    rig = RigBackend()
    identity = rig.encode_portrait(astronaut)
    assert identity.reference_motion.shape == (MOTION_DIM,)
    video = rig.decode(identity, np.stack([identity.reference_motion] * 2))
    assert video.shape == (2, *identity.size, 3) and video.dtype == np.uint8
