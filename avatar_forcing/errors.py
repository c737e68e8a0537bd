"""User-facing errors: the CLI prints their message and exits non-zero, with no traceback."""


class AvatarForcingError(Exception):
    """Base class for every error caused by the user's input or environment."""


class InputError(AvatarForcingError):
    """Bad or unreadable input: media, motion files, arrays pushed into a session."""


class NoFaceError(InputError):
    """A photo or frame in which no face could be found."""


class ConfigError(AvatarForcingError):
    """Inconsistent or unknown configuration."""


class CheckpointError(AvatarForcingError):
    """A missing, corrupt, foreign or incompatible checkpoint."""


class BusyError(AvatarForcingError):
    """A resource limit is reached (for example, too many sessions)."""
