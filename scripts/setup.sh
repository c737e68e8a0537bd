#!/usr/bin/env bash
# Create .venv and install the project. Torch is pinned to the CPU wheel so no CUDA build is pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
# Extras: dev + wav2vec + pipecat (the Pipecat integration); EXTRAS=dev,wav2vec leaves Pipecat out.
EXTRAS=${EXTRAS:-dev,wav2vec,pipecat}
stamp=.venv/.installed-$({ cat pyproject.toml scripts/setup.sh; echo "$EXTRAS"; } | sha1sum | cut -c1-12)
if [[ ! -f $stamp ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
  .venv/bin/python -m pip install -q -e ".[$EXTRAS]"
  # MediaPipe's OpenCV (opencv-contrib-python) must stay the one cv2 that loads: the tracker and renderer use it
  .venv/bin/python -c "import cv2, mediapipe, numpy; cv2.resize(numpy.zeros((4, 4, 3), numpy.uint8), (2, 2))" \
    || { echo "OpenCV (cv2) does not work after the install" >&2; exit 1; }
  rm -f .venv/.installed-*
  touch "$stamp"
fi
