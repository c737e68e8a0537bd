"""The shipped default model: a real trained `tiny` checkpoint that loads and streams a block."""

import json

import numpy as np
import torch

from avatar_forcing.audio.io import load_audio
from avatar_forcing.demo import DEMO_DIR
from avatar_forcing.model.checkpoint import load_checkpoint
from avatar_forcing.model.config import model_preset
from avatar_forcing.motion.vector import MOTION_DIM
from avatar_forcing.stream.options import SessionOptions
from avatar_forcing.stream.session import DEFAULT_CHECKPOINT, AvatarSession

MAX_BYTES = 50 * 1024 * 1024


def test_default_checkpoint_is_small_trained_tiny_with_stats():
    files = list(DEFAULT_CHECKPOINT.iterdir())
    assert sum(f.stat().st_size for f in files) <= MAX_BYTES
    model, cfg, stats = load_checkpoint(DEFAULT_CHECKPOINT)
    assert cfg == model_preset("tiny") and cfg.user_motion_input  # v8: the user's motion in each token
    assert stats is not None and np.all(np.asarray(stats.std) > 0)
    extra = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())["extra"]
    assert extra.get("stage") == "dpo" and extra.get("step", 0) > 0  # pretrained, then DPO
    # training moved the output layer away from its zero initialisation
    assert model.final_layer.linear.weight.abs().sum() > 0


def test_default_model_generates_one_block():
    torch.set_num_threads(1)
    session = AvatarSession(options=SessionOptions(render=False, nfe=2),
                            reference_motion=np.zeros(MOTION_DIM, np.float32))
    speech = load_audio(DEMO_DIR / "avatar.wav")[: 16000]  # 1 s of the demo's avatar speech
    session.push_avatar_audio(speech, 16000)
    block = session.step()
    session.close()
    assert block is not None and block.motion.shape == (session.block_size, MOTION_DIM)
    assert np.isfinite(block.motion).all()
