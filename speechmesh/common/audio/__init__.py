"""Audio codecs over PyAV (FFmpeg): PCM buffers, the output format table, encoders and
the decoder every service uses for uploaded files."""

from speechmesh.common.audio.decode import decode_audio
from speechmesh.common.audio.encode import StreamEncoder, encode_audio
from speechmesh.common.audio.formats import FORMATS, OutputFormat, OutputSpec, output_format
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import PcmStreamResampler, resample
from speechmesh.common.audio.stretch import time_stretch

__all__ = [
    "FORMATS",
    "OutputFormat",
    "OutputSpec",
    "Pcm",
    "PcmStreamResampler",
    "StreamEncoder",
    "decode_audio",
    "encode_audio",
    "output_format",
    "resample",
    "time_stretch",
]
