"""Models served by NVIDIA Triton Inference Server: the wire both sides share, the client that
engines use to call a Triton model (`remote.py`), the base of the python-backend models that
host speechmesh engines inside Triton (`hosting.py`), and the launcher of a local
tritonserver (`server.py`). docs/deploy.md says how a model moves to Triton.
"""
