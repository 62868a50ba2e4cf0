"""CAM++ speaker embedder (3D-Speaker, 192-d, onnxruntime): diarization's default.

Chosen by measurement on real speech (docs/performance.md, "Diarization on real speech"):
on pyannote's phone call of two women the d-vector puts them 0.09 apart, closer than one
woman's own clips, while CAM++ puts them 0.34 apart; over four real women its pair error
rate is 7% against the d-vector's 20% (docs/reference/speaker-embedders.md). It was trained
on some 200k Chinese and English speakers at 16 kHz, narrowband audio resampled.

The weights are the state dict `make models` installs (speechmesh/speakers/campplus_weights.py);
the network is built from it as an ONNX graph (campplus_graph.py) and the features are
Kaldi's 80-bin log-mel filterbank (kaldi-native-fbank) with the clip's mean removed, as
3D-Speaker computes them. One clip is one model call: the network's context masks and
statistics pooling average over the whole clip, so clips cannot share a padded batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from speechmesh.common.errors import ModelUnavailable
from speechmesh.common.onnx import cpu_session
from speechmesh.speakers import SAMPLE_RATE
from speechmesh.speakers.campplus_weights import weights_path

if TYPE_CHECKING:  # onnxruntime is imported on load, by services that have it
    from onnxruntime import InferenceSession, OrtValue

# Shorter clips are padded with silence to this length: the network strides time by two and
# its statistics pooling needs two frames; under half a second says little of a voice anyway.
_MIN_SAMPLES = SAMPLE_RATE // 2


class CamPlusEmbedder:
    def __init__(self, models_dir: Path, threads: int = 0) -> None:
        """`threads`: onnxruntime intra-op threads (0 = one per core)."""
        self._weights = weights_path(models_dir)
        self._threads = threads
        self._session: InferenceSession | None = None
        self._arrays: list[OrtValue] = []

    def load(self) -> None:
        try:
            import kaldi_native_fbank  # noqa: F401  (fail here, not on the first request)
            import onnxruntime

            from speechmesh.speakers import campplus_graph
        except ImportError as error:
            raise ModelUnavailable(f"the CAM++ embedder needs {error.name}") from None
        if not self._weights.is_file():
            raise ModelUnavailable(f"CAM++ weights are not installed at {self._weights} (make models)")
        from speechmesh.speakers.state_dict import read_state_dict

        model, weights = campplus_graph.build(read_state_dict(self._weights))
        # The session reads the weights where they are: they must live as long as it does.
        self._arrays = [onnxruntime.OrtValue.ortvalue_from_numpy(array) for array in weights.values()]
        self._session = cpu_session(
            model.SerializeToString(), self._threads, external=dict(zip(weights, self._arrays, strict=True))
        )

    def embed(self, audio: np.ndarray) -> np.ndarray:
        session = self._loaded()
        from speechmesh.speakers.campplus_graph import INPUT

        vector = session.run(None, {INPUT: _features(audio)[None]})[0][0]
        return np.asarray(vector / (np.linalg.norm(vector) + 1e-12), np.float32)

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        from speechmesh.speakers.campplus_graph import EMBEDDING_SIZE

        if not clips:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        return np.stack([self.embed(clip) for clip in clips])

    def _loaded(self) -> InferenceSession:
        if self._session is None:
            raise ModelUnavailable("the CAM++ embedder is not loaded")
        return self._session


def _features(audio: np.ndarray) -> np.ndarray:
    """(frames, 80) float32: Kaldi log-mel filterbank (25 ms frames every 10 ms, Povey window,
    no dither) less its mean over the clip."""
    import kaldi_native_fbank as knf

    from speechmesh.speakers.campplus_graph import MEL_BINS

    clip = np.asarray(audio, np.float32).reshape(-1)
    if len(clip) < _MIN_SAMPLES:
        clip = np.pad(clip, (0, _MIN_SAMPLES - len(clip)))
    options = knf.FbankOptions()
    options.frame_opts.dither = 0
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.mel_opts.num_bins = MEL_BINS
    fbank = knf.OnlineFbank(options)
    fbank.accept_waveform(SAMPLE_RATE, clip.tolist())
    fbank.input_finished()
    frames = np.array([fbank.get_frame(i) for i in range(fbank.num_frames_ready)], np.float32)
    return np.asarray(frames - frames.mean(axis=0), np.float32)
