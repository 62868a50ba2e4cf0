"""Concrete TTS engines. Only `services.tts.registry` imports them, by model id."""
