"""Talk to a running avatar server from Python: the integration path for a voice-agent builder.

    avatar-forcing serve &                      # http://127.0.0.1:8080
    python examples/client.py --audio me.wav --video me.mp4 --say "Hello!" --seconds 10

It connects over WebRTC, streams a wav and a video as the user (looped), makes the avatar speak
(typed text through the API, or your agent's PCM through the WebSocket: see --agent-wav), records
what comes back to an mp4, and prints latency statistics. Without --audio/--video it uses eSpeak NG
speech and the astronaut photo.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import sys
from pathlib import Path

import aiohttp
import av
import numpy as np

from avatar_forcing.serve.client import AvatarClient

SR = 16000


def read_user_video(path: str | None, max_frames: int = 250, size: int = 320) -> list[np.ndarray]:
    if path is None:
        import cv2
        from skimage import data

        photo = cv2.resize(data.astronaut(), (size, size))
        return [np.roll(photo, int(6 * np.sin(2 * np.pi * i / 50)), axis=0) for i in range(50)]
    frames = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= max_frames:
                break
    return frames


def read_user_audio(path: str | None) -> np.ndarray:
    from avatar_forcing.audio.io import load_audio

    if path is not None:
        return load_audio(path)
    from avatar_forcing.audio.tts import synthesize

    speech = synthesize("Hi there! I would like to hear about your day.").pcm
    return np.concatenate([np.asarray(speech, np.float32), np.zeros(SR, np.float32)])


class Mp4Recorder:
    """Encodes the avatar's frames and voice as they arrive (H.264 + AAC)."""

    def __init__(self, path: Path, fps: int = 25):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        self.video = self.container.add_stream("libx264", rate=fps)
        self.video.pix_fmt = "yuv420p"
        self.video.options = {"preset": "ultrafast"}
        self.audio = self.container.add_stream("aac", rate=SR)
        self.audio.layout = "mono"
        self.frames = 0
        self.samples = 0

    def add_video(self, rgb: np.ndarray) -> None:
        if self.frames == 0:
            self.video.width, self.video.height = rgb.shape[1], rgb.shape[0]
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames
        self.frames += 1
        self.container.mux(self.video.encode(frame))

    def add_audio(self, pcm: np.ndarray) -> None:
        if self.frames == 0:
            return  # start the sound track with the picture
        frame = av.AudioFrame.from_ndarray(pcm[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts = SR, self.samples
        frame.time_base = fractions.Fraction(1, SR)
        self.samples += pcm.size
        self.container.mux(self.audio.encode(frame))

    def close(self) -> None:
        self.container.mux(self.video.encode(None))
        self.container.mux(self.audio.encode(None))
        self.container.close()


async def stream_agent_audio(url: str, session: str, token: str | None, pcm: np.ndarray) -> None:
    """What a voice agent does: push its speech as int16 PCM chunks over the WebSocket, in real time."""
    ws_url = url.replace("http", "ws", 1) + f"/api/sessions/{session}/speech/ws"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    chunk = SR // 5  # 200 ms per message
    async with aiohttp.ClientSession(headers=headers) as http, http.ws_connect(ws_url) as ws:
        for start in range(0, len(pcm), chunk):
            await ws.send_bytes((np.clip(pcm[start:start + chunk], -1, 1) * 32767).astype("<i2").tobytes())
            await asyncio.sleep(chunk / SR)


async def main(args: argparse.Namespace) -> int:
    recorder = Mp4Recorder(Path(args.out))
    client = AvatarClient(args.url, token=args.token, portrait=args.portrait,
                          user_audio=read_user_audio(args.audio), user_frames=read_user_video(args.video),
                          on_video=recorder.add_video, on_audio=recorder.add_audio)
    try:
        session = await client.connect()
        await client.wait_connected()
        print(f"connected: session {session}")
        if args.say:
            print(f"the avatar will say {(await client.say(args.say))['seconds']:.1f} s of speech")
        agent = None
        if args.agent_wav:
            from avatar_forcing.audio.io import load_audio

            agent = asyncio.ensure_future(stream_agent_audio(args.url, session, args.token,
                                                             load_audio(args.agent_wav)))
        await asyncio.sleep(args.seconds)
        stats = await client.stats()
        if agent is not None:
            agent.cancel()
    finally:
        await client.close()
        recorder.close()
    r = client.received
    print(f"received {r.video_frames} frames ({r.fps:.1f} fps) and {r.audio_frames} audio packets")
    ms = lambda key: "n/a" if stats[key] is None else f"{stats[key]:.0f} ms"
    print(f"end-to-end latency (server): p50 {ms('e2e_ms_p50')}, p95 {ms('e2e_ms_p95')}; "
          f"block compute p50 {ms('compute_ms_p50')}; frames repeated {stats['video_repeated']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--token", default=None)
    parser.add_argument("--portrait", default="astronaut", help="a built-in name or an uploaded portrait id")
    parser.add_argument("--audio", help="the user's voice (any audio file; looped)")
    parser.add_argument("--video", help="the user's face (any video file; looped)")
    parser.add_argument("--say", default="Hello! Nice to meet you. How can I help you today?")
    parser.add_argument("--agent-wav", help="stream this file as the avatar's voice over the WebSocket")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="out/client_avatar.mp4")
    sys.exit(asyncio.run(main(parser.parse_args())))
