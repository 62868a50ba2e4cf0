"""Text-to-speech service: voices, whole-file and streaming synthesis, cloning."""
