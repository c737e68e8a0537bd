"""`avatar-forcing eval model CKPT... --data HELDOUT`: checkpoints through the streaming engine, scored.

For every held-out conversation and every participant taken as the avatar (a *clip*), the avatar's own
audio, the user's audio and the user's motion are pushed into an `AvatarSession` (rendering off) and the
generated motion is collected block by block, exactly as a live session would produce it. The motion is
then scored against the ground truth with `avatar_forcing.eval.metrics` (definitions and variants in
docs/EVALUATION.md). One row per checkpoint plus a ground-truth row, like the paper's Table 6.

A checkpoint trained with the user condition always dropped (the talking-only ablation model) never
learned to read the user, so it is streamed without user inputs: its blocks are generated talking-only.
Clip noise is seeded per clip and shared across checkpoints, so rows differ only by their weights.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import LinAlgWarning
from tqdm import tqdm

from avatar_forcing.data.shards import Conversation
from avatar_forcing.errors import CheckpointError, InputError
from avatar_forcing.eval import metrics as M
from avatar_forcing.motion.vector import FPS, MotionStats, idx
from avatar_forcing.stream.features import AudioFeatures, audio_features_for
from avatar_forcing.stream.inputs import FRAME_SAMPLES, SAMPLE_RATE
from avatar_forcing.stream.options import SessionOptions, settle_after

GT_LABEL = "ground truth"
LABEL_METRICS = ("nod_recall", "nod_precision", "nod_latency_s")  # need labelled reaction events


@dataclass(frozen=True)
class EvalConfig:
    clips: int | None = 4  # held-out conversations (each gives one clip per role); None = all
    seconds: float | None = 20.0  # first S seconds of each conversation; None = whole conversations
    roles: tuple[int, ...] = (0, 1)  # which participants play the avatar
    nfe: int = 10  # Euler steps per block (the paper's 10 NFE)
    block_size: int | None = None  # frames per streamed block; None = the checkpoint's (SessionOptions)
    cfg_audio: float = 2.0  # w_a
    cfg_user: float = SessionOptions.cfg_user  # w_u, as served
    pose_guidance: float = SessionOptions.pose_guidance  # the head pose's share of the guidance, as served
    history_noise: float = SessionOptions.history_noise  # flow time of the generated past, as served
    clean_context: bool = SessionOptions.clean_context  # a block continues from clean frames, as served
    overlap: int = SessionOptions.overlap  # frames sampled past each block and dropped, as served
    guidance_interval: tuple[float, float] = SessionOptions.guidance_interval  # guided flow times, as served
    settle_after_s: float | None = SessionOptions.settle_after_s  # the head settles in silence, as served
    seed: int = 0  # clip i is streamed with seed + i, the same for every checkpoint
    # Each clip is generated this many times (different noise) and scored as that many clips: the metrics
    # of a few short clips vary with the sampling noise about as much as between checkpoints.
    samples: int = 1
    threads: int | None = None  # torch threads (None: leave as is)
    sid_k_exp: int = 15  # Avatar Forcing's K for expression (DIM uses 40)
    sid_k_pose: int = 9  # Avatar Forcing's K for pose (DIM uses 20)
    var_variant: M.VarVariant = "flat"  # DIM's Var; see metrics.var for the others
    pfd: bool = True  # P-FD too (a 104-d matrix square root per clip: the slowest metric)
    nod: M.NodConfig = field(default_factory=M.NodConfig)
    lip: M.LipSyncConfig = field(default_factory=M.LipSyncConfig)
    mirror: M.MirrorConfig = field(default_factory=M.MirrorConfig)
    answer: M.AnswerConfig = field(default_factory=M.AnswerConfig)
    seam: M.SeamConfig = field(default_factory=M.SeamConfig)


@dataclass
class Clip:
    """One held-out conversation seen from one participant (the avatar); the other is the user."""

    name: str  # "<conversation id>/p<avatar>"
    avatar_audio: np.ndarray  # (T * 640,) float32 16 kHz
    user_audio: np.ndarray  # (T * 640,)
    user_motion: np.ndarray  # (T, 58) physical units
    gt: np.ndarray  # (T, 58) the avatar's ground-truth motion
    reference: np.ndarray  # (58,) the model's reference: the rest (zero in relative motion)
    nod_causes: list[float] | None  # user phrase ends the GT avatar nodded after; None = no labels

    @property
    def frames(self) -> int:
        return len(self.gt)


def clips_from_conversation(conv: Conversation, cfg: EvalConfig) -> list[Clip]:
    frames = conv.frames if cfg.seconds is None else min(conv.frames, int(round(cfg.seconds * FPS)))
    limit_s = frames / FPS - cfg.nod.window_s  # an event needs its whole response window inside the clip
    events = conv.meta.get("events")
    out = []
    for avatar in cfg.roles:
        me, you = conv.participants[avatar], conv.participants[1 - avatar]
        if me.audio is None or you.audio is None:
            raise InputError(f"held-out conversation {conv.id} has no audio; the streaming engine needs it "
                             "(synthesize with store_audio 'heldout' or 'all')")
        causes = None
        if isinstance(events, list) and len(events) == 2:
            causes = [float(e["cause_time"]) for e in events[avatar]
                      if e.get("type") == "nod" and float(e["cause_time"]) <= limit_s]
        out.append(Clip(f"{conv.id}/p{avatar}", me.audio[: frames * FRAME_SAMPLES],
                        you.audio[: frames * FRAME_SAMPLES], you.motion[:frames].astype(np.float64),
                        me.motion[:frames].astype(np.float64), np.zeros_like(me.rest, np.float64), causes))
    return out


def heldout_clips(data: str | Path, cfg: EvalConfig) -> list[Clip]:
    from avatar_forcing.data.loader import heldout_conversations

    convs = heldout_conversations(data, limit=cfg.clips, audio=True)
    if not convs:
        raise InputError(f"{data} has no held-out conversations to evaluate on")
    return [c for conv in convs for c in clips_from_conversation(conv, cfg)]


# ---- models --------------------------------------------------------------------------------------

@dataclass
class EvalModel:
    label: str
    path: str
    model: torch.nn.Module
    stats: MotionStats
    talking_only: bool  # trained with the user condition always dropped
    audio_features: AudioFeatures  # what its checkpoint was trained to hear (noise suppression, context)


def parse_spec(spec: str) -> tuple[str, str]:
    """``LABEL=DIR`` or ``DIR`` (labelled by its run folder name)."""
    if "=" in spec:
        label, path = spec.split("=", 1)
        return label, path
    p = Path(spec)
    return (p.parent.name if p.name in ("latest", "best") else p.name) or spec, spec


def load_eval_model(spec: str) -> EvalModel:
    from avatar_forcing.model.checkpoint import load_checkpoint, read_config

    label, path = parse_spec(spec)
    model, _, stats = load_checkpoint(path)
    if stats is None:
        raise CheckpointError(f"checkpoint {path} has no motion normalization stats")
    extra = read_config(path).get("extra") or {}
    flow = extra.get("flow_config") or {}
    return EvalModel(label, path, model, stats, float(flow.get("p_drop_user", 0.0)) >= 1.0,
                     audio_features_for(extra, model.cfg.audio_dim, path))


def stream_clip(m: EvalModel, clip: Clip, cfg: EvalConfig, seed: int) -> np.ndarray:
    """The avatar's motion (T, 58) from a streaming session fed the clip's inputs."""
    from avatar_forcing.stream.session import AvatarSession

    opts = SessionOptions(nfe=cfg.nfe, block_size=cfg.block_size, cfg_audio=cfg.cfg_audio,
                          cfg_user=cfg.cfg_user, pose_guidance=cfg.pose_guidance,
                          history_noise=cfg.history_noise, clean_context=cfg.clean_context,
                          overlap=cfg.overlap, guidance_interval=cfg.guidance_interval,
                          settle_after_s=cfg.settle_after_s, render=False,
                          seed=seed, threads=cfg.threads)
    session = AvatarSession(options=opts, model=m.model, stats=m.stats, reference_motion=clip.reference,
                            audio_features=m.audio_features)
    blocks = []
    try:
        session.push_avatar_audio(clip.avatar_audio.astype(np.float32), SAMPLE_RATE)
        if not m.talking_only:
            session.push_user_audio(clip.user_audio.astype(np.float32), SAMPLE_RATE)
            session.push_user_motion(clip.user_motion.astype(np.float32))
        session.finish()
        while (block := session.step()) is not None:
            blocks.append(block.motion)
    finally:
        session.close()
    motion = np.concatenate(blocks).astype(np.float64) if blocks else np.zeros((0, clip.gt.shape[1]))
    if len(motion) < clip.frames:
        raise InputError(f"the session produced {len(motion)} frames for {clip.name}, expected {clip.frames}")
    return motion[: clip.frames]


# ---- metrics -------------------------------------------------------------------------------------

@dataclass
class Clusters:
    """k-means fitted on all ground-truth frames (DIM's SID), for per-clip SID as well as the pooled one."""

    exp: object
    pose: object
    k_exp: int
    k_pose: int


def fit_clusters(clips: list[Clip], cfg: EvalConfig) -> Clusters:
    from sklearn.cluster import KMeans

    gt = np.concatenate([c.gt for c in clips])
    for k in (cfg.sid_k_exp, cfg.sid_k_pose):
        if len(gt) < k:
            raise InputError(f"SID with k={k} needs at least {k} ground-truth frames, got {len(gt)}")
    fit = lambda x, k: KMeans(n_clusters=k, random_state=0, n_init="auto").fit(x)  # noqa: E731
    return Clusters(fit(M.expression(gt), cfg.sid_k_exp), fit(M.pose(gt), cfg.sid_k_pose),
                    cfg.sid_k_exp, cfg.sid_k_pose)


def clip_metrics(clip: Clip, pred: np.ndarray, clusters: Clusters, cfg: EvalConfig) -> dict[str, float]:
    """Per-clip scores (the preference proxy compares these clip by clip)."""
    out: dict[str, float] = {}
    for part, split, km, k in (("exp", M.expression, clusters.exp, clusters.k_exp),
                               ("pose", M.pose, clusters.pose, clusters.k_pose)):
        x, g, p = [split(clip.user_motion)], [split(clip.gt)], [split(pred)]
        out[f"rpcc_flat_{part}"] = M.rpcc(x, g, p, "flat")
        out[f"rpcc_per_dim_{part}"] = M.rpcc(x, g, p, "per_dim")
        out[f"sid_{part}"] = M.shannon_index(km.predict(p[0]), k)
        out[f"var_{part}"] = M.var(p, cfg.var_variant)
    lip = M.lip_sync(clip.avatar_audio, pred, clip.gt, cfg.lip)
    out.update(lip_r=lip.correlation, lip_lag_s=lip.lag_s, mouth_mae=float(lip.mouth_mae))
    out["smile_r"] = M.smile_mirroring(clip.user_motion, pred, cfg.mirror)[0]
    out["block_seam"] = M.block_seam(pred, cfg.seam)
    answers = M.smile_answers(M.smile(clip.user_motion), M.smile(pred), cfg.answer)
    out.update(user_smiles=float(len(answers)), smiles_in_time=float((answers <= cfg.answer.within_s).sum()))
    if clip.nod_causes is not None:
        score = M.nod_response(pred[:, idx("pitch")], clip.nod_causes, cfg.nod)
        hits = score.recall * score.events if score.events else 0.0
        answering = score.precision * score.nods if score.nods else 0.0
        out.update(nod_events=float(score.events), nod_hits=hits, nod_recall=score.recall,
                   nod_latency_s=score.mean_latency_s, nods=float(score.nods), nods_answering=answering,
                   nod_precision=score.precision, nod_f1=_f1(score.recall, score.precision))
    return out


def _f1(recall: float, precision: float) -> float:
    """Harmonic mean; an avatar that never nods scores 0, not nan (it did miss the events)."""
    if not np.isfinite(recall):
        return float("nan")
    precision = 0.0 if not np.isfinite(precision) else precision
    return 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0


def _nanmean(values) -> float:
    v = np.asarray([x for x in values if x is not None], np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def set_metrics(clips: list[Clip], preds: list[np.ndarray], per_clip: list[dict[str, float]],
                clusters: Clusters, cfg: EvalConfig) -> dict[str, float]:
    """Scores over the whole held-out set: the interaction metrics pooled as DIM does (FD and P-FD per clip
    then averaged; rPCC, SID and Var over all frames), the probes averaged over clips."""
    out: dict[str, float] = {}
    for part, split, km, k in (("exp", M.expression, clusters.exp, clusters.k_exp),
                               ("pose", M.pose, clusters.pose, clusters.k_pose)):
        xs, gs = [split(c.user_motion) for c in clips], [split(c.gt) for c in clips]
        ps = [split(p) for p in preds]
        out[f"rpcc_flat_{part}"] = M.rpcc(xs, gs, ps, "flat")
        out[f"rpcc_per_dim_{part}"] = M.rpcc(xs, gs, ps, "per_dim")
        out[f"sid_k{k}_{part}"] = M.shannon_index(km.predict(np.concatenate(ps)), k)  # = metrics.sid
        out[f"var_{cfg.var_variant}_{part}"] = M.var(ps, cfg.var_variant)
        out[f"fd_{part}"] = M.fd(gs, ps)
        if cfg.pfd:
            out[f"pfd_{part}"] = M.pfd(xs, gs, ps)
    for key in ("lip_r", "lip_lag_s", "mouth_mae", "smile_r", "block_seam"):
        out[key] = _nanmean(m[key] for m in per_clip)
    smiles = sum(m["user_smiles"] for m in per_clip)  # pooled: most clips hold one or two
    out["user_smiles"] = float(smiles)
    out["smiles_answered"] = sum(m["smiles_in_time"] for m in per_clip) / smiles if smiles else float("nan")
    labelled = [m for m in per_clip if "nod_events" in m]
    if labelled:
        events = sum(m["nod_events"] for m in labelled)
        hits = sum(m["nod_hits"] for m in labelled)
        out["nod_recall"] = hits / events if events else float("nan")
        weighted = [(m["nod_latency_s"], m["nod_hits"]) for m in labelled if m["nod_hits"] > 0]
        out["nod_latency_s"] = (sum(lat * h for lat, h in weighted) / sum(h for _, h in weighted)
                                if weighted else float("nan"))
        out["nod_events"] = float(events)
        nods = sum(m["nods"] for m in labelled)  # a model that nods all the time has recall 1: see precision
        out["nod_precision"] = sum(m["nods_answering"] for m in labelled) / nods if nods else float("nan")
    return out


# ---- the evaluation --------------------------------------------------------------------------------

@dataclass
class Row:
    label: str
    source: str  # checkpoint path, or "ground truth"
    metrics: dict[str, float]
    per_clip: list[dict[str, float]]
    talking_only: bool = False


@dataclass
class EvalReport:
    rows: list[Row]
    clips: list[str]
    skipped: dict[str, str]  # metric -> why it was not computed
    config: dict
    preference: dict | None = None  # see preference.py

    def row(self, label: str) -> Row:
        for r in self.rows:
            if r.label == label:
                return r
        raise InputError(f"no row {label!r} in this evaluation (rows: {[r.label for r in self.rows]})")

    def to_dict(self) -> dict:
        return {"config": self.config, "clips": self.clips, "skipped": self.skipped,
                "preference": self.preference, "rows": [asdict(r) for r in self.rows]}


def skipped_metrics(clips: list[Clip]) -> dict[str, str]:
    unlabelled = [c.name for c in clips if c.nod_causes is None]
    if not unlabelled:
        return {}
    why = ("no clip has reaction labels" if len(unlabelled) == len(clips)
           else f"{len(unlabelled)} of {len(clips)} clips have no reaction labels (computed on the others)")
    return {name: why for name in LABEL_METRICS}


def score(label: str, source: str, clips: list[Clip], preds: list[np.ndarray], clusters: Clusters,
          cfg: EvalConfig, talking_only: bool = False) -> Row:
    with warnings.catch_warnings():  # near-singular covariances of still channels: FD handles them
        warnings.simplefilter("ignore", LinAlgWarning)
        return _score(label, source, clips, preds, clusters, cfg, talking_only)


def _score(label, source, clips, preds, clusters, cfg, talking_only) -> Row:
    per_clip = [clip_metrics(c, p, clusters, cfg) for c, p in zip(clips, preds, strict=True)]
    return Row(label, source, set_metrics(clips, preds, per_clip, clusters, cfg), per_clip, talking_only)


def evaluate(specs: list[str], data: str | Path, cfg: EvalConfig = EvalConfig(), progress: bool = True,
             models: list[EvalModel] | None = None) -> EvalReport:
    """Stream every checkpoint over the held-out clips and score it; the first row is the ground truth."""
    models = models if models is not None else [load_eval_model(s) for s in specs]
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise InputError(f"checkpoint labels must be unique, got {labels}; name them LABEL=DIR")
    clips = heldout_clips(data, cfg)
    clusters = fit_clusters(clips, cfg)
    clips = [c if s == 0 else replace(c, name=f"{c.name}#{s}") for s in range(cfg.samples) for c in clips]
    rows = [score(GT_LABEL, GT_LABEL, clips, [c.gt for c in clips], clusters, cfg)]
    total = len(models) * sum(c.frames for c in clips)
    with tqdm(total=total, unit="frame", desc="eval", disable=not progress) as bar:
        for m in models:
            preds = []
            for i, clip in enumerate(clips):
                preds.append(stream_clip(m, clip, cfg, cfg.seed + i))
                bar.update(clip.frames)
            rows.append(score(m.label, m.path, clips, preds, clusters, cfg, m.talking_only))
    return EvalReport(rows, [c.name for c in clips], skipped_metrics(clips), _config_dict(cfg))


def _config_dict(cfg: EvalConfig) -> dict:
    d = asdict(cfg)
    d["roles"] = list(cfg.roles)
    return d


# ---- CLI -----------------------------------------------------------------------------------------

def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT",
                        help="checkpoint directories, optionally labelled: LABEL=DIR")
    parser.add_argument("--data", required=True, help="corpus with a held-out split (`avatar-forcing data`)")
    parser.add_argument("--clips", type=int, default=EvalConfig.clips,
                        help="held-out conversations to use (0 = all); each gives one clip per role")
    parser.add_argument("--seconds", type=float, default=EvalConfig.seconds,
                        help="first S seconds of each conversation (0 = whole)")
    parser.add_argument("--roles", default="0,1", help="participants that play the avatar: 0,1 / 0 / 1")
    parser.add_argument("--nfe", type=int, default=EvalConfig.nfe, help="Euler steps per block")
    parser.add_argument("--cfg-audio", type=float, default=EvalConfig.cfg_audio, help="w_a")
    parser.add_argument("--cfg-user", type=float, default=EvalConfig.cfg_user, help="w_u")
    parser.add_argument("--pose-guidance", type=float, default=EvalConfig.pose_guidance,
                        help="the head pose's share of the guidance (SessionOptions.pose_guidance)")
    parser.add_argument("--history-noise", type=float, default=EvalConfig.history_noise,
                        help="flow time of the generated past in the cache (SessionOptions.history_noise)")
    parser.add_argument("--overlap", type=int, default=EvalConfig.overlap,
                        help="frames sampled past each block and dropped (SessionOptions.overlap)")
    parser.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                        default=EvalConfig.guidance_interval,
                        help="flow times of the guided Euler steps (SessionOptions.guidance_interval)")
    parser.add_argument("--settle-after", type=settle_after, default=EvalConfig.settle_after_s,
                        metavar="S|off",
                        help="silence after which the head settles (SessionOptions.settle_after_s)")
    parser.add_argument("--noisy-context", action="store_true",
                        help="a block continues from noised frames (the sampler before round 12)")
    parser.add_argument("--seed", type=int, default=EvalConfig.seed)
    parser.add_argument("--samples", type=int, default=EvalConfig.samples,
                        help="generations per clip, each with its own noise, scored as separate clips")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-pfd", action="store_true", help="skip P-FD (the slowest metric)")
    parser.add_argument("--preference", metavar="A:B",
                        help="automatic preference proxy of row A against row B, clip by clip (e.g. c:b)")
    parser.add_argument("-o", "--out", default="out/eval",
                        help="output folder: eval.json, eval.md, eval.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def evaluate_run(args: argparse.Namespace) -> int:
    from avatar_forcing.eval import preference, report

    try:
        roles = tuple(sorted({int(r) for r in str(args.roles).split(",") if r.strip()}))
    except ValueError:
        raise InputError(f"--roles must be a comma-separated list of 0 and 1, got {args.roles!r}") from None
    if not roles or any(r not in (0, 1) for r in roles):
        raise InputError(f"--roles must name participants 0 and/or 1, got {args.roles!r}")
    if args.nfe < 1 or args.samples < 1 or (args.clips is not None and args.clips < 0):
        raise InputError("--nfe and --samples must be >= 1 and --clips >= 0")
    cfg = EvalConfig(clips=args.clips or None, seconds=args.seconds or None, roles=roles, nfe=args.nfe,
                     cfg_audio=args.cfg_audio, cfg_user=args.cfg_user, pose_guidance=args.pose_guidance,
                     history_noise=args.history_noise, clean_context=not args.noisy_context,
                     overlap=args.overlap, guidance_interval=tuple(args.guidance_interval),
                     settle_after_s=args.settle_after, seed=args.seed,
                     threads=args.threads, pfd=not args.no_pfd, samples=args.samples)
    pair = None
    if args.preference:
        pair = args.preference.split(":")
        labels = [parse_spec(s)[0] for s in args.checkpoints]
        if len(pair) != 2 or any(p not in labels for p in pair):
            raise InputError(f"--preference wants A:B with two checkpoint labels from {labels}")
    result = evaluate(args.checkpoints, args.data, cfg, progress=not args.quiet)
    if pair:
        result.preference = preference.compare(result, pair[0], pair[1])
    out = Path(args.out)
    paths = report.write(result, out)
    report.print_report(result)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def save_json(result: EvalReport, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=1, default=_json_default, allow_nan=True))
    return path


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON-serializable: {type(o)}")
