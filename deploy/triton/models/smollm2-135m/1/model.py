"""Triton python-backend model: SmolLM2-135M-Instruct by llama.cpp (services/chat/triton_model.py)."""

from services.chat.triton_model import WriterModel


class TritonPythonModel(WriterModel):
    pass
