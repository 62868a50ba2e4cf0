"""Concrete STT engines and the speaker embedder; only the registry imports them."""
