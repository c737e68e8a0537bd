"""Adapters to other frameworks, each behind its own optional extra (`pip install avatar-forcing[X]`)."""
