"""`eval model` end to end on a seeded tiny corpus, the preference proxy on constructed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from avatar_forcing.audio.features import log_mel
from avatar_forcing.data.shards import Conversation, Participant, write_index, write_shard
from avatar_forcing.eval import preference as P
from avatar_forcing.eval.evaluate import GT_LABEL, EvalConfig, evaluate
from avatar_forcing.eval.report import columns, markdown
from avatar_forcing.model.checkpoint import save_checkpoint
from avatar_forcing.model.config import model_preset
from avatar_forcing.model.dfot import DFoT
from avatar_forcing.motion.vector import FPS, MOTION_DIM, MotionStats, idx

FRAMES = 150  # 6 s per conversation
SR, SPF = 16000, 640
MICRO = dict(width=32, depth=1, heads=2, cond_dim=16, time_embed_dim=32, window=20)


def _participant(rng, speaking: list[tuple[float, float]], nods_at: list[float],
                 smiling: list[tuple[float, float]]) -> Participant:
    t = np.arange(FRAMES) / FPS
    audio = np.zeros(FRAMES * SPF, np.float32)
    motion = np.zeros((FRAMES, MOTION_DIM), np.float32)
    for a, b in speaking:
        s, e = int(a * SR), int(b * SR)
        audio[s:e] = 0.3 * np.sin(np.linspace(0, 900 * (b - a), e - s)) * rng.uniform(0.5, 1, e - s)
        motion[(t >= a) & (t < b), idx("jawOpen")] = 0.4 + 0.1 * np.sin(20 * t[(t >= a) & (t < b)])
    for n in nods_at:  # a 0.5 s down-up pitch bump
        motion[:, idx("pitch")] += 0.15 * np.exp(-(((t - n - 0.25) / 0.1) ** 2))
    for a, b in smiling:
        for side in ("mouthSmileLeft", "mouthSmileRight"):
            motion[(t >= a) & (t < b), idx(side)] = 0.5
    motion += 0.01 * rng.standard_normal(motion.shape).astype(np.float32)
    return Participant(motion, log_mel(audio).astype(np.float32), np.ones(FRAMES, bool),
                       np.zeros(MOTION_DIM, np.float32), audio)


def make_corpus(root, labels: bool = True):
    rng = np.random.default_rng(0)
    convs = []
    for split, n in (("train", 1), ("heldout", 2)):
        for i in range(n):
            # p0 nods after p1's phrase end at 2.0; p0 smiles at 1.0 s, p1 at 3.0 s, each answered 0.5 s later
            p0 = _participant(rng, [(0.2, 1.8), (3.5, 4.2)], [2.2], [(1.0, 2.0), (3.5, 4.5)])
            p1 = _participant(rng, [(2.0 - 0.1, 2.0), (4.5, 5.6)], [1.9], [(1.5, 2.5), (3.0, 4.5)])
            meta = {}
            if labels:
                nod = lambda at, cause: {"type": "nod", "time": at, "cause_time": cause}  # noqa: E731
                meta["events"] = [[nod(2.2, 2.0)], [nod(1.9, 1.8)]]
            convs.append(Conversation(f"{split}{i}", split, [p0, p1], meta))
        write_shard(root, f"{split}-0", convs[-n:])
    write_index(root)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    cfg = model_preset("tiny", **MICRO)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "rand", DFoT(cfg), cfg, MotionStats())


def _run(tmp_path, checkpoint, labels=True):
    torch.set_num_threads(1)
    data = make_corpus(tmp_path / ("data" if labels else "nolabels"), labels)
    cfg = EvalConfig(clips=2, seconds=5.0, nfe=2, threads=1, pfd=False)
    return evaluate([f"a={checkpoint}", f"b={checkpoint}"], data, cfg, progress=False)


def test_eval_model_end_to_end(tmp_path, checkpoint):
    report = _run(tmp_path, checkpoint)
    assert [r.label for r in report.rows] == [GT_LABEL, "a", "b"]
    assert len(report.clips) == 4 and report.skipped == {}
    for row in report.rows:
        for c in columns(report):
            assert c.key in row.metrics, c.key
            # an untrained model may never nod, and may smile already wherever the user begins to
            if c.key not in ("nod_latency_s", "nod_precision", "smiles_answered"):
                assert math.isfinite(row.metrics[c.key]), (row.label, c.key)
    gt = report.row(GT_LABEL).metrics
    assert gt["rpcc_flat_exp"] == 0 and gt["fd_exp"] == pytest.approx(0, abs=1e-6)
    assert gt["nod_recall"] == 1.0  # the constructed GT nods after every labelled phrase end
    assert gt["user_smiles"] == 4 and gt["smiles_answered"] == 1.0  # one smile per clip, answered in 0.5 s
    a, b = report.row("a").metrics, report.row("b").metrics
    np.testing.assert_equal(a, b)  # same weights, same per-clip seeds: deterministic (NaN equal to NaN)
    assert a["fd_exp"] > 0
    md = markdown(report)
    assert "rPCC-Exp (flat)" in md and "| b |" in md
    json.dumps(report.to_dict(), default=float)


def test_eval_hears_through_the_checkpoints_own_features(tmp_path):
    """A checkpoint trained with the voice context (324 audio numbers a frame) is streamed with it; the
    evaluation used to hand every in-memory model plain log-mel, and the noise suppression went unheard."""
    from avatar_forcing.eval.evaluate import load_eval_model

    torch.manual_seed(0)
    cfg = model_preset("tiny", **MICRO, audio_dim=324)
    context = {"kind": "log_mel", "denoise": {"window_s": 1.0},
               "voice_context": {"horizons": [5, 12, 25, 50]}}
    ckpt = save_checkpoint(tmp_path / "vc", DFoT(cfg), cfg, MotionStats(), {"feature_config": context})
    heard = load_eval_model(str(ckpt)).audio_features.stream()
    assert heard.context is not None and heard.denoiser.cfg.window_s == 1.0
    data = make_corpus(tmp_path / "data", True)
    report = evaluate([f"vc={ckpt}"], data, EvalConfig(clips=1, seconds=5.0, nfe=2, threads=1, pfd=False),
                      progress=False)
    assert math.isfinite(report.row("vc").metrics["lip_r"])


def test_eval_samples_score_each_clip_several_times(tmp_path, checkpoint):
    torch.set_num_threads(1)
    data = make_corpus(tmp_path / "data", True)
    cfg = EvalConfig(clips=1, seconds=5.0, nfe=2, threads=1, pfd=False, samples=2)
    report = evaluate([f"a={checkpoint}"], data, cfg, progress=False)
    assert len(report.clips) == 4 and len(set(report.clips)) == 4  # 2 roles x 2 generations, named apart
    per_clip = report.row("a").per_clip
    assert per_clip[0]["var_exp"] != per_clip[2]["var_exp"]  # the second generation has its own noise
    assert report.row(GT_LABEL).per_clip[0] == report.row(GT_LABEL).per_clip[2]
    assert "x 2 generations" in markdown(report)


def test_eval_without_labels_reports_skipped(tmp_path, checkpoint):
    report = _run(tmp_path, checkpoint, labels=False)
    assert set(report.skipped) == {"nod_recall", "nod_precision", "nod_latency_s"}
    assert "nod_recall" not in report.row("a").metrics
    assert math.isfinite(report.row("a").metrics["lip_r"])
    assert "Skipped nod_recall" in markdown(report)


def test_eval_cli_writes_outputs(tmp_path, checkpoint, capsys):
    from avatar_forcing.cli import main

    torch.set_num_threads(1)
    data = make_corpus(tmp_path / "data")
    out = tmp_path / "out"
    code = main(["eval", "model", f"a={checkpoint}", f"b={checkpoint}", "--data", str(data), "--clips", "1",
                 "--seconds", "3", "--nfe", "1", "--threads", "1", "--no-pfd", "--preference", "a:b",
                 "-o", str(out), "--quiet"])
    assert code == 0
    assert (out / "eval.md").is_file() and (out / "eval.png").stat().st_size > 1000
    saved = json.loads((out / "eval.json").read_text())
    assert saved["preference"]["win_rate"] == 0.5  # identical models tie on every clip
    assert "PROXY" in capsys.readouterr().out
    assert main(["eval", "model", str(checkpoint), "--data", str(tmp_path / "missing")]) == 2


# ---- preference composite ----

GT = {"rpcc_per_dim_exp": 0.0, "rpcc_per_dim_pose": 0.0, "nod_f1": 1.0, "smile_r": 0.6,
      "sid_exp": 3.0, "sid_pose": 2.5, "var_exp": 0.05, "var_pose": 0.01}


def test_preference_reactive_and_rich_wins():
    good = {"rpcc_per_dim_exp": 0.01, "rpcc_per_dim_pose": 0.02, "nod_f1": 0.8, "smile_r": 0.5,
            "sid_exp": 2.9, "sid_pose": 2.4, "var_exp": 0.045, "var_pose": 0.011}
    flat = {"rpcc_per_dim_exp": 0.3, "rpcc_per_dim_pose": 0.4, "nod_f1": 0.1, "smile_r": 0.0,
            "sid_exp": 1.0, "sid_pose": 0.8, "var_exp": 0.005, "var_pose": 0.001}
    r = P.preference([good, good, flat], [flat, flat, flat], [GT, GT, GT], "c", "b")
    assert (r.wins, r.ties, r.losses) == (2, 1, 0)
    assert r.win_rate == pytest.approx(2.5 / 3)
    assert r.group_win_rates["reactiveness"] == pytest.approx(2.5 / 3)
    assert P.preference([flat], [good], [GT]).win_rate == 0.0


def test_preference_closer_to_gt_not_larger():
    # richness is closeness to the ground truth: exaggerated variance loses to matching variance
    base = dict(GT)
    wild = dict(GT, var_exp=0.5, var_pose=0.1, sid_exp=3.0, sid_pose=2.5)
    s = P.clip_score(base, wild, GT)
    assert s["richness"] == 0.75 and s["reactiveness"] == 0.5 and s["overall"] > 0.5


def test_preference_missing_values_are_ties():
    a = dict(GT, nod_f1=float("nan"))
    b = {k: v for k, v in GT.items() if k != "nod_f1"}
    assert P.duel(a["nod_f1"], None, 1.0, "higher", 1e-9) == 0.5
    assert P.clip_score(a, b, GT)["overall"] == 0.5
