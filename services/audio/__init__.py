"""Audio service: enhance, dereverb, separate, analyze, convert, voice conversion (not built yet).

The contract is in protos/speechmesh/v1/audio.proto; see docs/architecture.md for the plan.
"""
