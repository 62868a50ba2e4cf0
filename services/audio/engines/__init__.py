"""Audio engines, one module per model; each implements a Protocol of `services/audio/processors.py`."""
