"""Concrete language models and translators of the chat service (the Protocols are in `services/chat/processors.py`)."""
