"""Audio service: enhance, dereverb, separate, analyze, convert, voice conversion and
speech-to-speech over gRPC (`protos/speechmesh/v1/audio.proto`).

Engines sit behind one Protocol per kind (`processors.py`); `pipeline.py` takes an upload
to encoded results; `servicer.py` maps the RPCs onto it.
"""
