"""Pipecat integration: the avatar as the video service of a voice agent (extra: avatar-forcing[pipecat]).

`AvatarVideoService` (service.py) turns the agent's speech and the user's microphone and camera into the
avatar's video and voice; `EspeakTTSService` (tts.py) is an offline TTS; `ScriptedAgent` (agent.py) an
offline stand-in for STT + LLM. See docs/INTEGRATIONS.md and examples/pipecat_bot.py.
"""

from __future__ import annotations

try:
    import pipecat  # noqa: F401
except ImportError as exc:  # a clear message instead of a bare ModuleNotFoundError deep in an import
    raise ImportError("avatar_forcing.integrations.pipecat needs Pipecat: "
                      "pip install 'avatar-forcing[pipecat]'") from exc

from avatar_forcing.integrations.pipecat.config import AvatarServiceConfig
from avatar_forcing.integrations.pipecat.service import AvatarListener, AvatarVideoService

__all__ = ["AvatarListener", "AvatarServiceConfig", "AvatarVideoService"]
