"""Triton python-backend model: the d-vector speaker embedder (services/stt/triton_embedder.py)."""

from services.stt.triton_embedder import EmbedderModel


class TritonPythonModel(EmbedderModel):
    pass
