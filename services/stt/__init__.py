"""Speech-to-text service: Whisper recognition with word timestamps, VAD, diarization and
live streaming recognition, served over gRPC (protos/speechmesh/v1/stt.proto)."""
