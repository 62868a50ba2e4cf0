"""Triton python-backend model: the CAM++ speaker embedder (services/stt/triton_embedder.py)."""

from services.stt.triton_embedder import EmbedderModel


class TritonPythonModel(EmbedderModel):
    pass
