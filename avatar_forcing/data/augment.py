"""What a webcam and a microphone do to the user channels, applied to training windows (issue 16).

At inference the user comes through MediaPipe on a live camera and through a browser microphone (Opus);
in the corpus the user is a clean synthetic track and a clean eSpeak voice. Each training window's user
side is corrupted the way the real path corrupts it, so the model does not learn to rely on detail that
a camera never delivers:
  * motion: a per-person gain (people and framings differ in how far the tracker reads them), a resting
    offset (the online rest is an estimate), tracker jitter, held frames (dropped or skipped frames:
    the server tracks every 2nd frame). A real smile also moves other channels in a per-person mix,
    which no augmentation here imitates: the model sees only the listener's cues of the user's face
    (model/config.py LISTENER_CUES), where that mix does not reach;
  * audio (log-mel features): a room's reverberation, a music bed (the held harmonic notes that online
    videos put under speech: two of the real test videos have one), microphone gain, a noise floor with a
    random tilt, and a band limit (cheap microphones and low-bitrate codecs).
The avatar's own voice gets the same audio corruption, less often: at inference it comes from any TTS
engine, a voice agent or a recorded file, not only from clean eSpeak, and a mouth that follows the
voice's energy through a noise floor and a band limit carries over to voices the corpus never had.
The magnitudes come from what MediaPipe reads on the real videos (docs/benchmarks/real_faces.json:
pose jitter 0.1-0.35 deg, people's head std 2-4 deg), never from one file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from avatar_forcing.audio.features import LogMelConfig, db_to_features, features_to_db, mel_filterbank
from avatar_forcing.motion.vector import NUM_BLENDSHAPES

Range = tuple[float, float]


@dataclass(frozen=True)
class UserAugmentConfig:
    prob: float = 0.8                         # of a training window's user side being corrupted at all
    # motion (physical units, relative to the user's rest)
    gain: Range = (0.6, 1.4)                  # per window: how strongly this user's face reads
    offset_blendshape: float = 0.03           # std of the rest estimate's error
    offset_pose: float = 0.02                 # radians (~1.1 deg) / face widths / log ratio
    jitter_blendshape: float = 0.015          # per-frame tracker noise
    jitter_pose: float = 0.005                # radians (~0.3 deg, real_faces.json jitter_upper)
    hold_prob: float = 0.5                    # a window with held frames ...
    hold_every: tuple[int, int] = (2, 4)      # ... tracked every k-th frame only
    # audio (log-mel features, LogMelConfig units: dB / db_scale around db_center)
    gain_db: Range = (-12.0, 6.0)
    noise_db: Range = (-80.0, -45.0)          # noise floor power per mel band
    noise_tilt_db: Range = (-20.0, 0.0)       # over the mel bands, low to high (hum-like to hiss-like)
    noise_fluctuation_db: float = 2.0         # a noise floor is not flat in time either
    band_limit_prob: float = 0.3
    band_limit_mel: tuple[int, int] = (50, 75)  # first attenuated mel band (of 80)
    band_limit_db: float = -30.0
    avatar_audio_prob: float = 0.5            # of a window's avatar voice going through the same corruption
    reverb_prob: float = 0.3
    reverb_t60_s: Range = (0.2, 0.7)          # living room to hall
    reverb_wet: Range = (0.2, 1.0)            # reverberant over direct power
    music_prob: float = 0.25
    music_snr_db: Range = (0.0, 20.0)         # speech's loud frames over the music, in power
    music_note_s: Range = (0.2, 1.0)          # each note's length
    music_f0_hz: Range = (110.0, 880.0)       # A2 to A5, log-uniform
    music_partials: int = 8                   # harmonics per note, power falling as 1 / k^2
    music_decay_per_s: Range = (0.0, 3.0)     # a held pad (0) to a plucked string


def augment_user_motion(motion: np.ndarray, rng: np.random.Generator, cfg: UserAugmentConfig) -> np.ndarray:
    """(N, 58) relative motion -> a corrupted copy."""
    n, dim = motion.shape
    out = motion * rng.uniform(*cfg.gain)
    pose = slice(NUM_BLENDSHAPES, dim)
    offset = np.empty(dim, np.float32)
    offset[:NUM_BLENDSHAPES] = rng.normal(0.0, cfg.offset_blendshape, NUM_BLENDSHAPES)
    offset[pose] = rng.normal(0.0, cfg.offset_pose, dim - NUM_BLENDSHAPES)
    jitter = np.empty((n, dim), np.float32)
    jitter[:, :NUM_BLENDSHAPES] = rng.normal(0.0, cfg.jitter_blendshape, (n, NUM_BLENDSHAPES))
    jitter[:, pose] = rng.normal(0.0, cfg.jitter_pose, (n, dim - NUM_BLENDSHAPES))
    out = out + offset + jitter
    out[:, :NUM_BLENDSHAPES] = np.clip(out[:, :NUM_BLENDSHAPES], -1.0, 1.0)  # relative weights: [-1, 1]
    if rng.random() < cfg.hold_prob:
        every = int(rng.integers(cfg.hold_every[0], cfg.hold_every[1] + 1))
        phase = int(rng.integers(every))
        tracked = np.maximum((np.arange(n) - phase) // every * every + phase, 0)
        out = out[tracked]
    return out.astype(np.float32)


def augment_audio(features: np.ndarray, rng: np.random.Generator, cfg: UserAugmentConfig,
                  mel: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """(N, hops x n_mels) log-mel features -> the same voice through another microphone (the user's, or the
    avatar's as another TTS or recording would give it)."""
    n = len(features)
    db = features_to_db(features.reshape(n, mel.hops_per_frame, mel.n_mels), mel)
    reverb, music = rng.random() < cfg.reverb_prob, rng.random() < cfg.music_prob
    if reverb or music:
        power = 10.0 ** (db.reshape(-1, mel.n_mels) / 10.0)
        if reverb:
            power = reverberate(power, rng, cfg, mel)
        if music:
            power = power + music_bed(power, rng, cfg, mel)
        db = 10.0 * np.log10(np.maximum(power, mel.log_floor)).reshape(db.shape)
    db = db + rng.uniform(*cfg.gain_db)
    if rng.random() < cfg.band_limit_prob:
        first = int(rng.integers(cfg.band_limit_mel[0], cfg.band_limit_mel[1] + 1))
        db[..., first:] += cfg.band_limit_db
    floor = rng.uniform(*cfg.noise_db) + np.linspace(0.0, rng.uniform(*cfg.noise_tilt_db), mel.n_mels)
    noise = floor + rng.normal(0.0, cfg.noise_fluctuation_db, db.shape)
    power = 10.0 ** (db / 10.0) + 10.0 ** (noise / 10.0)
    db = 10.0 * np.log10(np.maximum(power, mel.log_floor))
    return db_to_features(db, mel).reshape(n, -1)


def reverberate(power: np.ndarray, rng: np.random.Generator, cfg: UserAugmentConfig,
                mel: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """(hops, n_mels) mel power -> the same in a room: an exponential tail fills the pauses between
    syllables (energy down 60 dB in T60)."""
    decay = 10.0 ** (-6.0 * (mel.hop / mel.sample_rate) / rng.uniform(*cfg.reverb_t60_s))
    tail = lfilter([1.0 - decay], [1.0, -decay], power, axis=0)
    return power + rng.uniform(*cfg.reverb_wet) * tail


def music_bed(power: np.ndarray, rng: np.random.Generator, cfg: UserAugmentConfig,
              mel: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """(hops, n_mels) mel power of a background of held harmonic notes, `music_snr_db` below the speech's
    loud hops: energy that is not speech and that a mouth must not follow."""
    hops, hop_s = len(power), mel.hop / mel.sample_rate
    bank = mel_filterbank(mel)  # (fft bins, n_mels): a pure tone's power lands in its bin's bands
    bin_hz = mel.sample_rate / mel.n_fft
    out = np.zeros_like(power)
    start = 0
    while start < hops:
        length = max(1, round(rng.uniform(*cfg.music_note_s) / hop_s))
        f0 = np.exp(rng.uniform(*np.log(cfg.music_f0_hz)))
        k = np.arange(1, cfg.music_partials + 1)
        k = k[k * f0 < mel.fmax]
        spectrum = (k[:, None] ** -2.0 * bank[np.round(k * f0 / bin_hz).astype(int)]).sum(0)
        t = np.arange(min(length, hops - start)) * hop_s
        out[start:start + len(t)] = np.exp(-rng.uniform(*cfg.music_decay_per_s) * t)[:, None] * spectrum
        start += length
    loud = np.percentile(power.sum(1), 90)
    level = loud * 10.0 ** (-rng.uniform(*cfg.music_snr_db) / 10.0)
    return out * level / max(out.sum(1).mean(), 1e-30)
