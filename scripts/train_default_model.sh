#!/usr/bin/env bash
# Reproduce the built-in default model (avatar_forcing/assets/default_model) from a seed:
#   1. synthesize the conversation corpus (eSpeak NG speech, rule-based talking/listening motion);
#   2. pretrain the `tiny` DFoT with diffusion forcing;
#   3. fine-tune it with label-free DPO (losers = the stage-1 model's own samples, half with the user
#      conditions dropped and half for another window's user, LOSER_FORM=mixed; the preference is scored
#      on the blendshapes only, CHANNEL_WEIGHTING=expression: see docs/EVALUATION.md, round 4);
#   4. copy the DPO model (EMA weights, safetensors + config JSON with the motion stats) into the package.
#
# The recipe is sized for a 2-core CPU (20-45 minutes with the VM's speed: data 1-2 min, pretraining
# 20-36 min, DPO 2-4 min), with a short warm-up and EMA so that a short run ends on useful weights. Every
# number is in the two JSON configs written below, next to the run, so the run is fully described by files.
# With the same seed, thread count and torch version the run is bit-for-bit repeatable on the CPU.
#
#   scripts/train_default_model.sh                 # everything, into runs/default_model
#   SEED=1 RUN=runs/other scripts/train_default_model.sh
#   INSTALL=0 scripts/train_default_model.sh       # train only, leave the shipped model alone
# The DPO ablation (scripts/ablation.py) runs this recipe for its models:
#   USER_CONDITION=drop_always DPO_STEPS=0 ...     # (a): talking-only, no DPO
#   LOSER_SOURCE=checkpoint LOSER_CHECKPOINT=runs/a/pretrain/latest DPO_OUT=dpo_a BETA=100 ...
set -euo pipefail
cd "$(dirname "$0")/.."

SEED=${SEED:-0}
RUN=${RUN:-runs/default_model}
DATA=${DATA:-$RUN/data}             # an existing corpus, or where to synthesize one
HOURS=${HOURS:-3}                   # hours of conversation (about 10% of it held out)
PRETRAIN_STEPS=${PRETRAIN_STEPS:-16000}
DECAY_STEPS=${DECAY_STEPS:-0}       # pretraining's last steps, over which the lr falls linearly to 0
DPO_STEPS=${DPO_STEPS:-300}         # 0: pretraining only
MODEL_CHANGES=${MODEL_CHANGES:-"{}"}     # JSON: fields of the tiny preset to change, e.g. '{"cond_window": 25}'
USER_CONDITION=${USER_CONDITION:-normal}
P_DROP_USER=${P_DROP_USER:-0.1}     # how often pretraining drops the user condition (for guidance)
AUGMENT_USER=${AUGMENT_USER:-true}  # corrupt the user side as a webcam and a microphone would
DENOISE_AUDIO=${DENOISE_AUDIO:-true}  # hear both voices through the session's noise suppression
ONSET_FRACTION=${ONSET_FRACTION:-0.0}  # windows placed around a user's smile beginning (LoaderConfig)
VOICE_CONTEXT=${VOICE_CONTEXT:-false}  # append each voice's recent loudness to its features (audio/voice_context.py)
LOSS_WEIGHTS=${LOSS_WEIGHTS:-"{}"}  # JSON: motion channels that count more in the flow loss (FlowConfig)
STREAMED_FRACTION=${STREAMED_FRACTION:-0.0}  # windows trained with the sampler's nearly clean past (FlowConfig)
BURN_IN=${BURN_IN:-0}               # frames at a window's start with no loss (FlowConfig.burn_in)
START_FRACTION=${START_FRACTION:-0.0}  # windows at a conversation's start, which count whole (LoaderConfig)
KEEP_PERIODIC=${KEEP_PERIODIC:-false}  # keep every ckpt_every checkpoint (a few GB a run), not only latest
FLOW_LOSS=${FLOW_LOSS:-l2}          # l2: the conditional mean (l1, the paper's, erases occasional reactions)
BETA=${BETA:-1000.0}
LOSER_SOURCE=${LOSER_SOURCE:-self}
LOSER_CHECKPOINT=${LOSER_CHECKPOINT:-}
LOSER_FORM=${LOSER_FORM:-mixed}     # sample (the paper) | residual | mismatched | mixed (avatar_forcing/train/dpo.py)
CHANNEL_WEIGHTING=${CHANNEL_WEIGHTING:-expression}  # expression: DPO on the blendshapes only (docs/EVALUATION.md)
PHRASE_END_POSE=${PHRASE_END_POSE:-0.0}  # the head's share of the preference after the user's phrase ends (DPOConfig)
LAM=${LAM:-0.1}
DPO_LR=${DPO_LR:-0.0001}
DPO_OUT=${DPO_OUT:-dpo}
# One torch thread per process: on a small machine oversubscribed threads run ~10x slower, and a
# fixed thread count keeps the run bit-for-bit repeatable.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
INSTALL=${INSTALL:-1}
AF=${AF:-.venv/bin/avatar-forcing}
ASSET=avatar_forcing/assets/default_model

mkdir -p "$RUN"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$RUN/timings.txt"; }
start=$(date +%s)

# --- 1. data ----------------------------------------------------------------------------------------
if [[ ! -f $DATA/index.json ]]; then
  rm -rf "$DATA"
  t=$(date +%s)
  "$AF" data synth --hours "$HOURS" --seed "$SEED" --workers 2 -o "$DATA"
  log "data synth: $(( $(date +%s) - t )) s"
fi

# --- 2. diffusion-forcing pretraining ---------------------------------------------------------------
cat > "$RUN/pretrain.json" <<EOF
{"model_preset": "tiny", "model_changes": $MODEL_CHANGES, "steps": $PRETRAIN_STEPS, "decay_steps": $DECAY_STEPS, "batch_size": 8, "lr": 0.0005, "warmup_steps": 40,
 "ema_decay": 0.99, "val_every": 100, "val_windows": 32, "ckpt_every": 100, "seed": $SEED,
 "device": "cpu", "num_workers": 0, "user_condition": "$USER_CONDITION",
 "p_drop_user": $P_DROP_USER, "augment_user": $AUGMENT_USER, "denoise_audio": $DENOISE_AUDIO,
 "voice_context": $VOICE_CONTEXT, "onset_fraction": $ONSET_FRACTION, "loss_weights": $LOSS_WEIGHTS,
 "streamed_fraction": $STREAMED_FRACTION, "burn_in": $BURN_IN, "start_fraction": $START_FRACTION,
 "keep_periodic": $KEEP_PERIODIC, "flow_loss": "$FLOW_LOSS"}
EOF
t=$(date +%s)
"$AF" train --config "$RUN/pretrain.json" --data "$DATA" --out "$RUN/pretrain" --resume
log "pretrain ($PRETRAIN_STEPS steps): $(( $(date +%s) - t )) s"

# --- 3. DPO -----------------------------------------------------------------------------------------
if (( DPO_STEPS > 0 )); then
  cat > "$RUN/$DPO_OUT.json" <<EOF
{"train": {"model_preset": "tiny", "steps": $DPO_STEPS, "batch_size": 8, "lr": $DPO_LR, "warmup_steps": 5,
           "ema_decay": 0.99, "val_every": 20, "val_windows": 32, "ckpt_every": 20, "seed": $SEED,
           "device": "cpu", "num_workers": 0, "p_drop_user": $P_DROP_USER,
           "augment_user": $AUGMENT_USER, "denoise_audio": $DENOISE_AUDIO, "voice_context": $VOICE_CONTEXT,
           "flow_loss": "$FLOW_LOSS",
           "onset_fraction": $ONSET_FRACTION, "loss_weights": $LOSS_WEIGHTS,
           "streamed_fraction": $STREAMED_FRACTION, "burn_in": $BURN_IN, "start_fraction": $START_FRACTION,
           "keep_periodic": $KEEP_PERIODIC},
 "beta": $BETA, "lam": $LAM, "loser_source": "$LOSER_SOURCE", "loser_checkpoint": "$LOSER_CHECKPOINT",
 "loser_form": "$LOSER_FORM", "channel_weighting": "$CHANNEL_WEIGHTING",
 "phrase_end_pose": $PHRASE_END_POSE, "loser_mode": "on_the_fly", "loser_nfe": 5}
EOF
  t=$(date +%s)
  "$AF" train dpo --config "$RUN/$DPO_OUT.json" --from "$RUN/pretrain/latest" --data "$DATA" \
    --out "$RUN/$DPO_OUT" --resume
  log "$DPO_OUT ($DPO_STEPS steps): $(( $(date +%s) - t )) s"
fi
log "total: $(( $(date +%s) - start )) s"

# --- 4. install -------------------------------------------------------------------------------------
if [[ $INSTALL == 1 && $DPO_STEPS -gt 0 ]]; then
  mkdir -p "$ASSET"
  cp "$RUN/$DPO_OUT/latest/model.safetensors" "$RUN/$DPO_OUT/latest/config.json" "$ASSET/"
  chmod 644 "$ASSET/model.safetensors" "$ASSET/config.json"
  cp "$RUN/pretrain/loss_curve.png" "$ASSET/pretrain_loss.png"
  cp "$RUN/$DPO_OUT/loss_curve.png" "$ASSET/dpo_loss.png"
  log "installed $ASSET ($(du -sh "$ASSET" | cut -f1))"
fi
