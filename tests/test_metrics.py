import numpy as np
import pytest

from avatar_forcing.errors import InputError
from avatar_forcing.eval.metrics import (
    MOUTH_NAMES,
    LipSyncConfig,
    NodConfig,
    SeamConfig,
    block_modulation,
    block_profile,
    block_seam,
    detect_nods,
    expression,
    fd,
    frechet_distance,
    interaction_metrics,
    lip_sync,
    nod_response,
    pcc_flat,
    pcc_per_dim,
    pfd,
    pose,
    rpcc,
    shannon_index,
    sid,
    smile_mirroring,
    var,
)
from avatar_forcing.motion.vector import FPS, MOTION_DIM, idx

# ---- METRICS.md hand-checkable vectors ----

GT = np.array([[1, 2], [2, 1], [3, 5], [4, 3]], float)
PRED = np.array([[1, 1], [1, 2], [2, 2], [3, 1]], float)
X = np.array([[0, 1], [2, 2], [1, 4], [3, 3]], float)


def test_fd_vector():
    a, b = np.array([[0, 1, 2, 3]], float).T, np.array([[1, 3, 5, 7]], float).T
    assert frechet_distance(a, b) == pytest.approx(6.25 + 5 / 3, abs=1e-12)
    assert fd([a, a], [b, b]) == pytest.approx(7.916666666666, abs=1e-9)
    assert frechet_distance(GT, GT) == pytest.approx(0, abs=1e-9)


def test_rpcc_vectors():
    assert pcc_flat([GT], [X]) == pytest.approx(0.7749842583, abs=1e-9)
    assert pcc_flat([PRED], [X]) == pytest.approx(0.4399413451, abs=1e-9)
    assert rpcc([X], [GT], [PRED]) == pytest.approx(0.3350429132, abs=1e-9)
    assert pcc_per_dim([GT], [X]) == pytest.approx(0.8157609203, abs=1e-9)


def test_var_vectors():
    assert var([GT]) == pytest.approx(1.734375)
    assert var([GT[:2], GT[2:]], "mean_dim") == pytest.approx(1.71875)
    assert var([GT], "sum_dim") == pytest.approx(3.4375)


def test_sid_vectors():
    assert shannon_index(np.zeros(10, int), 4) == pytest.approx(-1.4427e-6, rel=1e-4)
    assert shannon_index(np.arange(40) % 4, 4) == pytest.approx(1.99999423, abs=1e-8)


# ---- METRICS.md seeded table (DIM layout: pose = columns 0:6, expression = 6:56) ----

TABLE = {
    0: dict(fd_pose=0.218550, fd_exp=7.237140, pfd_pose=0.375054, pfd_exp=12.956455, var_gt=0.994146,
            var_pred=0.733463, rpcc_pose=0.091062, rpcc_exp=0.079984, sid_pose=4.22388, sid_exp=5.11242),
    1: dict(fd_pose=0.178995, fd_exp=7.067543, pfd_pose=0.308416, pfd_exp=12.713670, var_gt=0.986198,
            var_pred=0.733328, rpcc_pose=0.095403, rpcc_exp=0.084844, sid_pose=4.27877, sid_exp=4.97958),
}


@pytest.mark.parametrize("seed", [0, 1])
def test_seeded_table(seed):
    rng = np.random.default_rng(seed)
    n, t = 8, 64
    gt = [rng.standard_normal((t, 56)) for _ in range(n)]
    x = [0.5 * g + rng.standard_normal((t, 56)) for g in gt]
    pred = [0.7 * g + 0.5 * rng.standard_normal((t, 56)) for g in gt]
    p = lambda clips: [c[:, :6] for c in clips]
    e = lambda clips: [c[:, 6:] for c in clips]
    row = TABLE[seed]
    got = dict(fd_pose=fd(p(gt), p(pred)), fd_exp=fd(e(gt), e(pred)),
               pfd_pose=pfd(p(x), p(gt), p(pred)), pfd_exp=pfd(e(x), e(gt), e(pred)),
               var_gt=var(e(gt)), var_pred=var(e(pred)),
               rpcc_pose=rpcc(p(x), p(gt), p(pred)), rpcc_exp=rpcc(e(x), e(gt), e(pred)))
    for key, value in got.items():
        assert value == pytest.approx(row[key], abs=1e-6), key
    assert sid(p(gt), p(pred), 20) == pytest.approx(row["sid_pose"], abs=1e-2)
    assert sid(e(gt), e(pred), 40) == pytest.approx(row["sid_exp"], abs=1e-2)


def test_splits_and_report_keys():
    rng = np.random.default_rng(0)
    clips = [rng.random((40, MOTION_DIM)) for _ in range(2)]
    assert expression(clips[0]).shape == (40, 52) and pose(clips[0]).shape == (40, 6)
    np.testing.assert_array_equal(pose(clips[0])[:, 0], clips[0][:, idx("pitch")])
    report = interaction_metrics(clips, clips, clips)
    assert report["fd_exp"] == pytest.approx(0, abs=1e-6) and report["rpcc_flat_pose"] == 0
    assert {"sid_k40_exp", "sid_k20_pose", "var_flat_exp", "rpcc_per_dim_exp", "pfd_pose"} <= set(report)


def test_bad_shapes():
    with pytest.raises(InputError):
        fd([GT], [PRED[:3]])
    with pytest.raises(InputError):
        var([])
    with pytest.raises(InputError):
        sid([GT], [GT], k=10)


# ---- reaction probes with known answers ----

def speech_like(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise bursts whose per-frame loudness follows a random syllable envelope."""
    frames = int(seconds * FPS)
    loud = np.clip(np.convolve(rng.random(frames), np.ones(3) / 3, "same") - 0.3, 0, None)
    pcm = rng.standard_normal(frames * 640) * np.repeat(loud, 640)
    return pcm.astype(np.float32), loud


def test_lip_sync_finds_lag_and_error():
    rng = np.random.default_rng(0)
    pcm, loud = speech_like(8, rng)
    motion = np.zeros((len(loud), MOTION_DIM), np.float32)
    motion[3:, idx("jawOpen")] = loud[:-3]  # mouth follows the sound by 3 frames
    score = lip_sync(pcm, motion, gt=motion)
    assert score.lag_s == pytest.approx(3 / FPS)
    assert score.correlation > 0.95 and score.mouth_mae == 0
    off = motion.copy()
    off[:, idx("mouthSmileLeft")] += 0.5
    mae = lip_sync(pcm, motion, gt=off, cfg=LipSyncConfig()).mouth_mae
    assert mae == pytest.approx(0.5 / len(MOUTH_NAMES), rel=1e-5)


def nodding_pitch(nod_starts_s, seconds=20.0, depth=0.12, length_s=0.6, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FPS)) / FPS
    pitch = 0.02 * np.sin(2 * np.pi * 0.1 * t) + 0.003 * rng.standard_normal(len(t))  # drift + jitter
    for s in nod_starts_s:
        inside = (t >= s) & (t < s + length_s)
        pitch[inside] += depth * np.sin(np.pi * (t[inside] - s) / length_s)
    return pitch


def test_nod_detection_recall_and_latency():
    events = np.array([2.0, 6.0, 10.0, 14.0])
    starts = events[:3] + 0.5  # the last event gets no nod
    score = nod_response(nodding_pitch(starts), events)
    assert score.events == 4 and score.nods == 3
    assert score.recall == pytest.approx(0.75) and score.precision == 1.0
    # the detector marks the fastest downward motion, a little after the nod starts
    assert 0.5 <= score.mean_latency_s <= 0.8
    assert len(detect_nods(nodding_pitch([]), NodConfig())) == 0


def test_smile_mirroring_lag():
    rng = np.random.default_rng(1)
    n = 400
    user_smile = np.clip(np.convolve(rng.random(n), np.ones(15) / 15, "same"), 0, 1)
    user = np.zeros((n, MOTION_DIM), np.float32)
    user[:, idx("mouthSmileLeft")] = user[:, idx("mouthSmileRight")] = user_smile
    avatar = np.zeros_like(user)
    avatar[15:, idx("mouthSmileLeft")] = user_smile[:-15]  # mirrors after 0.6 s, one side only
    avatar[15:, idx("mouthSmileRight")] = user_smile[:-15]
    r, lag = smile_mirroring(user, avatar)
    assert lag == pytest.approx(0.6) and r > 0.99
    unrelated = rng.random((n, MOTION_DIM)).astype(np.float32)
    r0, _ = smile_mirroring(user, unrelated)
    assert r0 < 0.3


def test_head_dips_measure_the_nod_after_each_start_and_skip_late_ones():
    from avatar_forcing.eval.metrics import NodConfig, head_dips

    pitch = np.zeros(100)
    pitch[20:30] = np.sin(np.linspace(0, np.pi, 10)) * 0.1  # a 0.1 rad nod starting at frame 20
    cfg = NodConfig()
    dips = head_dips(pitch, [15, 60, 90], cfg)  # frame 90's 1.5 s window runs past the end
    assert len(dips) == 2
    assert abs(dips[0] - pitch.max()) < 1e-12 and dips[1] == 0.0


def test_block_seam_is_one_for_smooth_motion_and_counts_jumps_at_block_boundaries():
    cfg = SeamConfig(first=50, block=10)
    t = np.arange(250)
    smooth = np.zeros((250, 58))
    smooth[:, idx("pitch")] = 0.05 * np.sin(2 * np.pi * t / 37.0)
    assert abs(block_seam(smooth, cfg) - 1.0) < 0.1
    jumpy = smooth.copy()
    jumpy[:, idx("yaw")] = 0.01 * ((t - 50) // 10 % 2)  # a 0.01 rad step at every boundary after the first
    profile = block_profile(jumpy, cfg)
    assert profile.shape == (10,) and np.argmax(profile) == 0
    assert block_seam(jumpy, cfg) > 2.0
    jumpy[:, idx("yaw")] = 0.01 * ((t - 45) // 10 % 2)  # the same steps, but inside the blocks
    assert block_seam(jumpy, cfg) < 1.0
    assert np.isnan(block_seam(smooth[:40], cfg))  # no block after the first
    assert block_modulation(block_profile(smooth, cfg)) < 0.1
    stutter = np.array([1.2] + [1.0] * 7 + [0.7, 0.7])  # slows before the boundary, then jumps
    assert block_modulation(stutter) > 0.12 > block_modulation(np.array([1.2] + [1.0] * 9))
