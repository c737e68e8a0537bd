"""How well does any mouth follow these voices? Real speakers against the avatar (issue 15's jaw criterion).

For each real video with speech: the speaker's own tracked jawOpen and the jawOpen a checkpoint asks for
when it speaks the same audio, each correlated (best lag) with two envelopes of the sound: its raw RMS per
frame (`eval portraits`' "jaw r") and the speech band (300-3400 Hz) of the noise-suppressed log-mel
features, which leaves out the music beds and room noise under two of the videos. Lags: the mouth after
the sound only (0..+0.4 s, as `eval portraits` scores it) or either way (-0.4..+0.4 s).

    .venv/bin/python scripts/speaker_jaw_probe.py avatar_forcing/assets/default_model --seconds 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from real_jaw_probe import spoken_motion

from avatar_forcing.audio.denoise import DenoiseConfig, denoise
from avatar_forcing.audio.features import LogMelConfig, features_to_db, log_mel, mel_filterbank
from avatar_forcing.audio.io import load_audio
from avatar_forcing.eval.metrics import LipSyncConfig, audio_envelope, filled, lagged_correlation
from avatar_forcing.motion.tracker import track_video
from avatar_forcing.motion.vector import FPS, idx
from avatar_forcing.stream.inputs import SAMPLE_RATE

SPEECH_BAND_HZ = (300.0, 3400.0)  # the telephone band: where a voice's energy is, above hum, below hiss
MAX_LAG = round(0.4 * FPS)
LAGS = {"after": range(0, MAX_LAG + 1), "either": range(-MAX_LAG, MAX_LAG + 1)}


def speech_band_envelope(pcm: np.ndarray, cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """(T,) amplitude of the speech band per frame, after the session's noise suppression."""
    bank = mel_filterbank(cfg)  # (fft bins, n_mels)
    centre = bank.argmax(0) * cfg.sample_rate / cfg.n_fft
    band = (centre >= SPEECH_BAND_HZ[0]) & (centre <= SPEECH_BAND_HZ[1])
    db = features_to_db(denoise(log_mel(pcm, cfg), DenoiseConfig()), cfg)
    power = 10 ** (db.reshape(len(db), cfg.hops_per_frame, cfg.n_mels)[..., band] / 10)
    return np.sqrt(power.sum(-1).mean(-1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default=None, help="default: the shipped model")
    parser.add_argument("--videos", default="../shared/real/videos")
    parser.add_argument("--names", default="d6,d10,d11,d14,d20", help="comma-separated stems with speech")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(args.videos)
    if not folder.is_dir():
        print(f"no video folder at {folder}: nothing to probe")
        return
    scores: dict[tuple[str, str, str], list[float]] = {}
    for name in args.names.split(","):
        path = folder / f"{name}.mp4"
        pcm = load_audio(path, SAMPLE_RATE)[: round(args.seconds * SAMPLE_RATE)]
        frames = len(pcm) // round(SAMPLE_RATE / FPS)
        jaws = {"speaker": filled(track_video(path).values[:frames, idx("jawOpen")]),
                "avatar": spoken_motion(args.checkpoint, pcm, args.seed)[:, idx("jawOpen")]}
        envelopes = {"rms": audio_envelope(pcm, LipSyncConfig(sample_rate=SAMPLE_RATE, fps=FPS)),
                     "speech band": speech_band_envelope(pcm)}
        line = []
        for who, jaw in jaws.items():
            for env_name, env in envelopes.items():
                for lag_name, lags in LAGS.items():
                    r, lag = lagged_correlation(env, jaw, lags)
                    scores.setdefault((who, env_name, lag_name), []).append(r)
                    line.append(f"{who} {env_name} {lag_name} {r:+.2f}@{lag / FPS:+.2f}s")
        print(f"{name}: " + " | ".join(line), flush=True)
    print(f"means over {len(args.names.split(','))} videos (first {args.seconds:g} s):")
    for (who, env_name, lag_name), rs in scores.items():
        print(f"  {who:8s} {env_name:12s} mouth {lag_name:7s} the sound: r {np.mean(rs):+.3f}")


if __name__ == "__main__":
    main()
