"""Avatar Forcing: real-time interactive head avatars from one portrait photo."""

__version__ = "0.1.0"
