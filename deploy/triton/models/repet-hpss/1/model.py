"""Triton python-backend model: the REPET-SIM + HPSS separator (services/audio/triton_model.py)."""

from services.audio.triton_model import SeparatorModel


class TritonPythonModel(SeparatorModel):
    pass
