"""Helpers for the browser test: Debian's Chromium under Selenium, fake media from files, a server thread."""

from __future__ import annotations

import asyncio
import shutil
import threading
import wave
from pathlib import Path

import cv2
import numpy as np

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000",
)


def find_browser() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    """RGB frames -> an uncompressed 4:2:0 y4m file (what Chromium's fake camera reads)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())


def user_face_frames(seconds: float = 2.0, fps: int = 25,
                     size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """The astronaut portrait (a real public-domain photo) gently nodding and swaying: a user's webcam."""
    from skimage import data

    photo = data.astronaut()  # 512 x 512
    w, h = size
    frames = []
    for i in range(int(seconds * fps)):
        t = i / fps
        angle = 4.0 * np.sin(2 * np.pi * 0.5 * t)  # degrees of roll
        dy = 10.0 * np.sin(2 * np.pi * 1.0 * t)  # a nod, in pixels
        m = cv2.getRotationMatrix2D((256, 200), angle, 1.0)
        m[:, 2] += ((w - 512) / 2, (h - 512) / 2 + dy)
        frames.append(cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return frames


USER_TEXT = "Hello! I just got back from a long trip. It was wonderful, and I have so much to tell you."


def user_speech(text: str = USER_TEXT, silence_s: float = 0.5) -> np.ndarray:
    from avatar_forcing.audio.tts import synthesize

    speech = synthesize(text)
    pad = np.zeros(int(silence_s * 16000), np.float32)
    return np.concatenate([pad, np.asarray(speech.pcm, np.float32), pad])


class ServerThread:
    """An aiohttp app served on 127.0.0.1 from its own event loop in a daemon thread."""

    def __init__(self, server):
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def call(self, fn, timeout: float = 30):
        """Run ``fn()`` on the server's loop (its state is not thread-safe) and return its result."""
        async def wrapper():
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self.loop)

        async def start():
            self._runner = web.AppRunner(self.server.build())
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

        self.loop.run_until_complete(start())
        self._ready.set()
        self.loop.run_forever()
