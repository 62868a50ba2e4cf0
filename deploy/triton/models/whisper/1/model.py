"""Triton python-backend model: Whisper base (services/stt/triton_model.py does the work)."""

from services.stt.triton_model import RecognizerModel


class TritonPythonModel(RecognizerModel):
    pass
