"""Chat service: voice chat and speech translation over the tts and stt services (not built yet).

The contract is in protos/speechmesh/v1/chat.proto; see docs/architecture.md for the plan.
"""
