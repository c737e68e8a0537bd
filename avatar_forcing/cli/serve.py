"""`avatar-forcing serve`: the real-time WebRTC server and its web page."""

from __future__ import annotations

import argparse
import atexit
import ipaddress
import logging
import os
import re
import sys
import threading

from avatar_forcing.errors import ConfigError
from avatar_forcing.serve.config import ServerConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServerConfig()
    parser.add_argument("--host", default=d.host, help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument("--max-sessions", type=int, default=d.max_sessions,
                        help="concurrent sessions (default: one per two cores); the next one is answered 503 "
                        "busy + Retry-After")
    parser.add_argument("--token", default=os.environ.get("AVATAR_FORCING_TOKEN"),
                        help="require this bearer token on the API (default: $AVATAR_FORCING_TOKEN)")
    parser.add_argument("--checkpoint", default=None, help="model folder (default: the built-in model)")
    parser.add_argument("--ice-server", action="append", default=[], metavar="URL",
                        help="STUN/TURN server for clients beyond this machine (repeatable; default none)")
    parser.add_argument("--max-upload-mb", type=float, default=d.max_image_bytes / 2**20,
                        help="largest portrait upload (audio uploads may be twice this)")
    parser.add_argument("--playout-delay", type=float, default=d.playout_delay_s,
                        help="seconds the avatar runs behind its inputs (block 0.4 s + look-ahead + compute)")
    parser.add_argument("--random-init", action="store_true",
                        help="no checkpoint: an UNTRAINED model (for trying the plumbing only)")


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    if args.max_sessions < 1:
        raise ConfigError("--max-sessions must be at least 1")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    if not 0.1 <= args.playout_delay <= 5.0:
        raise ConfigError(f"--playout-delay must be in 0.1..5 s, got {args.playout_delay}")
    upload = int(args.max_upload_mb * 2**20)
    return ServerConfig(host=args.host, port=args.port, max_sessions=args.max_sessions, token=args.token,
                        checkpoint=args.checkpoint, ice_servers=tuple(args.ice_server),
                        max_image_bytes=upload, max_audio_bytes=2 * upload, random_init=args.random_init,
                        playout_delay_s=args.playout_delay)


def check_engine(cfg: ServerConfig) -> None:
    """Fail at start-up, with the engine's own message, if no model can be loaded."""
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import load_engine_model

    load_engine_model(cfg.checkpoint, None, None, SessionOptions(random_init=cfg.random_init))


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from avatar_forcing.serve.app import QuietAccessLogger, build_app
    from avatar_forcing.serve.sessions import settle_heap

    cfg = config_from_args(args)
    quiet_logs()
    check_engine(cfg)
    settle_heap(cfg)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not _is_loopback(cfg.host):
        print(f"warning: serving on {cfg.host}, reachable from other machines"
              + ("" if cfg.token else " and WITHOUT a token (--token)"))
    print(f"avatar-forcing: open http://{cfg.host}:{cfg.port}/  (max {cfg.max_sessions} sessions)")
    web.run_app(build_app(cfg), host=cfg.host, port=cfg.port, print=None, access_log_class=QuietAccessLogger)
    return 0


NOISY_LOGGERS = ("aioice", "aiortc", "mediapipe", "absl")  # every ICE check and codec event at INFO


# MediaPipe's C++ writes absl/glog lines ("W0000 00:00:... face_landmarker_graph.cc ...") and TensorFlow
# Lite INFO lines straight to file descriptor 2 for every tracker it builds (one or two per session);
# no environment variable silences them, so the server filters them out of its stderr.
NATIVE_NOISE = re.compile(rb"^([WI]\d{4} |INFO: Created TensorFlow Lite|WARNING: Logging before InitGoogle)")


def quiet_logs(native: bool = True) -> None:
    """Third-party chatter at WARNING; MediaPipe's native INFO/WARNING lines dropped (errors kept)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if native:
        filter_native_stderr()


_filtering = False


def filter_native_stderr() -> None:
    """Route fd 2 through a pipe; a daemon thread forwards every line but MediaPipe's INFO/WARNING."""
    global _filtering
    if _filtering:
        return
    _filtering = True
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = [line + b"\n" for line in lines if not NATIVE_NOISE.match(line)]
                if kept:
                    os.write(original, b"".join(kept))
            if pending:
                os.write(original, pending)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:  # at exit: the last lines (a traceback, say) must not be lost in the pipe
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's write end: the thread forwards the rest and ends
        thread.join(2.0)

    atexit.register(restore)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
