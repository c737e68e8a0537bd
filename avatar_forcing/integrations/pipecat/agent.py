"""ScriptedAgent: an offline stand-in for speech recognition + a language model.

It listens with Pipecat's VAD frames: when the user starts talking it interrupts the bot (a barge-in),
when the user stops it answers with the next line of its script (cycling). Replace it with a real STT,
user aggregator and LLM (docs/INTEGRATIONS.md); everything else in the pipeline stays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

DEFAULT_SCRIPT = (
    "That sounds wonderful. Tell me more about it, I would love to hear the whole story.",
    "Really? I did not expect that at all. What happened next?",
    "I see. Thank you for sharing that with me, it was a pleasure to listen.",
)


@dataclass
class AgentEvents:
    """Wall-clock times (time.time()) of what the agent saw and did, for tests."""

    user_started: list[float] = field(default_factory=list)
    user_stopped: list[float] = field(default_factory=list)
    interruptions: list[float] = field(default_factory=list)
    replies: list[tuple[float, str]] = field(default_factory=list)


class ScriptedAgent(FrameProcessor):
    def __init__(self, script: tuple[str, ...] = DEFAULT_SCRIPT, *, interrupt: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.script = script
        self.interrupt = interrupt
        self.events = AgentEvents()
        self.bot_speaking = False
        self._turn = 0

    async def say(self, text: str) -> None:
        """Speak `text` now (e.g. a greeting when the user connects)."""
        self.events.replies.append((time.time(), text))
        await self.push_frame(TTSSpeakFrame(text, append_to_context=False))

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self.bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.bot_speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self.events.user_started.append(time.time())
            if self.interrupt:  # the user barges in: everything downstream stops speaking
                self.events.interruptions.append(time.time())
                await self.broadcast_interruption()
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self.script:
            self.events.user_stopped.append(time.time())
            line = self.script[self._turn % len(self.script)]
            self._turn += 1
            await self.say(line)
