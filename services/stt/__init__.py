"""Speech-to-text service: Whisper recognition, word timestamps, VAD and diarization (issue 4).

The contract is in protos/speechmesh/v1/stt.proto; see docs/architecture.md for the plan.
"""
