"""Triton python-backend model: the d-vector speaker embedder (speechmesh/speakers/triton_model.py)."""

from speechmesh.speakers.triton_model import EmbedderModel


class TritonPythonModel(EmbedderModel):
    pass
