"""Triton python-backend model: Piper speech (services/tts/triton_model.py does the work)."""

from services.tts.triton_model import SynthesizerModel


class TritonPythonModel(SynthesizerModel):
    pass
