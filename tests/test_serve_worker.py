"""The engine worker on its own: tracking and generation on two threads, and shedding under overload."""

import threading
import time

import numpy as np

from avatar_forcing.serve.timeline import InputFrame, Timeline
from avatar_forcing.serve.worker import EngineWorker
from tests.serve_fakes import BLOCK, SAMPLES, FakeEngine

FPS = 25


class SlowEngine(FakeEngine):
    """Tracking takes `track_s` per frame and a block `step_s`: records which thread did what."""

    def __init__(self, track_s: float, step_s: float):
        super().__init__(np.zeros((8, 8, 3), np.uint8))
        self.track_s, self.step_s = track_s, step_s
        self.threads: dict[str, set[str]] = {"track": set(), "step": set()}
        self.max_ahead = 0

    def push_user_frame(self, rgb, timestamp):
        self.threads["track"].add(threading.current_thread().name)
        time.sleep(self.track_s)
        super().push_user_frame(rgb, timestamp)

    def step(self):
        self.max_ahead = max(self.max_ahead, len(self.avatar))
        block = super().step()
        if block is not None:
            self.threads["step"].add(threading.current_thread().name)
            time.sleep(self.step_s)
        return block


def run_worker(engine: SlowEngine, seconds: float, max_backlog_s: float) -> EngineWorker:
    timeline = Timeline(time.monotonic(), FPS, playout_delay_s=0.5)
    worker = EngineWorker(engine, timeline, FPS, 16000, max_backlog_s)
    worker.start()
    image = np.zeros((8, 8, 3), np.uint8)
    for k in range(int(seconds * FPS)):
        time.sleep(max(0.0, timeline.start + (k + 1) / FPS - time.monotonic()))
        pcm = np.full(SAMPLES, 0.1, np.float32)
        timeline.add_input(InputFrame(k, pcm, pcm, image, time.monotonic(), True))
    time.sleep(0.3)
    worker.stop()
    return worker


def test_tracking_and_generation_run_on_separate_threads():
    engine = SlowEngine(track_s=0.004, step_s=0.05)
    worker = run_worker(engine, seconds=2.0, max_backlog_s=2.0)
    assert worker.stats.error is None
    assert engine.threads["track"] == {"avatar-input"} and engine.threads["step"] == {"avatar-gen"}
    assert worker.stats.frames_skipped == 0 and worker.stats.frames_generated >= 40


def test_overloaded_engine_sheds_input_and_never_runs_far_ahead():
    # A block of 0.4 s takes 0.8 s to generate: only about half the input can ever be generated.
    engine = SlowEngine(track_s=0.001, step_s=0.8)
    worker = run_worker(engine, seconds=4.0, max_backlog_s=0.5)
    assert worker.stats.error is None
    assert worker.stats.frames_skipped > 0
    assert engine.max_ahead <= worker.ahead_frames + BLOCK  # pushed inputs stay bounded


def test_webcam_frames_are_tracked_every_nth_frame():
    engine = SlowEngine(track_s=0.0, step_s=0.0)
    timeline = Timeline(time.monotonic(), FPS, playout_delay_s=0.5)
    worker = EngineWorker(engine, timeline, FPS, 16000, max_backlog_s=2.0, track_every=2)
    worker.start()
    image = np.zeros((8, 8, 3), np.uint8)
    pcm = np.full(SAMPLES, 0.1, np.float32)
    for k in range(40):
        timeline.add_input(InputFrame(k, pcm, pcm, image if k != 4 else None, time.monotonic(), True))
    deadline = time.monotonic() + 5.0
    while worker.stats.frames_generated < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert worker.stats.error is None and worker.stats.frames_generated == 40
    # frames 0, 2, 5 (4 had no image), 7, 9, ... : half the camera frames, the gap bridged by the next one
    assert engine.frames_pushed == 1 + 1 + 18
