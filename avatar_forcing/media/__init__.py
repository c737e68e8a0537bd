"""Media input and output: still images (safe loading) and video (PyAV read/write with audio)."""
