"""Audio codecs over PyAV (FFmpeg): PCM buffers (`pcm`), the output format table (`formats`),
encoders (`encode`), resampling and time-stretching, and the decoder every service uses for
uploaded files (`decode`).

Import the submodule you use: this package imports none of them, so the gateway can read
`formats` without loading PyAV or numpy.
"""
