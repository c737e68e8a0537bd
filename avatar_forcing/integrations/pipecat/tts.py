"""EspeakTTSService: an offline Pipecat TTS on the project's eSpeak NG (avatar_forcing/audio/tts.py).

No model download, no network: the voice ships in a PyPI package. Synthesis runs in a worker thread
(eSpeak is faster than real time) and is streamed out in 0.2 s chunks so the avatar can start early.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import numpy as np
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.services.tts_service import TTSService

from avatar_forcing.integrations.pipecat.voice import float_to_pcm16

CHUNK_S = 0.2


@dataclass
class EspeakVoice:
    voice: str = "en"   # see avatar_forcing.audio.tts.voices()
    rate: int = 170     # words per minute
    pitch: int = 50     # 0..100


class EspeakTTSService(TTSService):
    def __init__(self, *, voice: EspeakVoice | None = None, sample_rate: int = 16000, **kwargs):
        super().__init__(push_start_frame=True, push_stop_frames=True, sample_rate=sample_rate, **kwargs)
        self.voice = voice or EspeakVoice()

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        from avatar_forcing.audio.tts import synthesize

        v = self.voice
        try:
            speech = await asyncio.to_thread(synthesize, text, v.voice, v.rate, v.pitch,
                                             sample_rate=self.sample_rate)
        except Exception as exc:  # a bad voice name or text: reported, the pipeline goes on
            yield ErrorFrame(error=f"eSpeak NG could not speak {text[:40]!r}: {exc}")
            return
        await self.stop_ttfb_metrics()
        pcm = np.asarray(speech.pcm, np.float32)
        step = int(CHUNK_S * self.sample_rate)
        for start in range(0, len(pcm), step):
            yield TTSAudioRawFrame(float_to_pcm16(pcm[start:start + step]), self.sample_rate, 1,
                                   context_id=context_id)
