"""Settings of the Pipecat avatar service: everything it decides on top of the engine's SessionOptions."""

from __future__ import annotations

from dataclasses import dataclass

from avatar_forcing.errors import ConfigError


@dataclass
class AvatarServiceConfig:
    # The output runs this far behind real time: one block of input (0.4 s at B = 10) + compute + slack.
    # The agent's speech is delayed by the same amount, so voice and lips leave together.
    playout_delay_s: float = 0.6
    # Track every Nth frame of the user's camera (MediaPipe ~15 ms a frame); the engine holds the last
    # observation in between. 2 = 12.5 Hz, well above nod and expression rates.
    track_every: int = 2
    # Overload: input frames further behind real time than this (None: the playout delay) could not be
    # shown in time any more and are skipped, not generated (the picture repeats, the voice plays on);
    # at half of it the user's camera is no longer tracked (the costly part of an input frame).
    max_backlog_s: float | None = None
    # Ask the input transport for the user's camera (UserImageRequestFrame upstream), as Pipecat's
    # vision services do, whenever no picture arrived for this long (SmallWebRTC then sends every frame).
    request_user_video: bool = True
    image_request_interval_s: float = 1.0
    user_video_source: str = "camera"
    user_id: str = ""  # the participant to ask; learned from the user's frames when empty
    # Barge-in: frames already generated with the interrupted speech get the mouth closed, blended in
    # over `mouth_ramp_frames` (no pop), and let go over `mouth_release_frames` once frames generated
    # from silence take over.
    close_mouth_on_interrupt: bool = True
    mouth_ramp_frames: int = 2
    mouth_release_frames: int = 5
    # Tests and benchmarks: the frame index as a 16-bit code in the top-left corner, so a viewer can
    # tell which frame it shows (repeats, lip-sync offset, barge-in timing).
    stamp_frames: bool = False
    log_frames: int = 3000  # emitted frames kept in `service.stats.frames` (2 min at 25 fps)

    def validate(self) -> AvatarServiceConfig:
        if self.playout_delay_s <= 0:
            raise ConfigError(f"playout_delay_s must be > 0, got {self.playout_delay_s}")
        if self.track_every < 1:
            raise ConfigError(f"track_every must be >= 1, got {self.track_every}")
        if self.mouth_ramp_frames < 1 or self.mouth_release_frames < 1:
            raise ConfigError("mouth_ramp_frames and mouth_release_frames must be >= 1")
        return self
