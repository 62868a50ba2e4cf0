"""Demucs v4 (Hybrid Transformer Demucs, package `demucs`) music separator.

Loads only from the folder it is given (`<models_dir>/demucs/`), never from the network.
Each configured model (`htdemucs`: drums, bass, other, vocals; `htdemucs_6s`: those plus
guitar and piano) is read from either layout demucs itself reads:
- demucs's release files, a local repo for `demucs.pretrained.get_model(name, repo=...)`:
  `<name>.yaml` (from demucs's `remote/` folder) with the checkpoints it lists, as
  downloaded (`955717e8-8726e21a.th`, checked against the hash in its name), or one
  checkpoint renamed `<name>.th`;
- the HuggingFace repository of the model (`adefossez/HTDemucs`, `adefossez/HTDemucs-6s`):
  `<name>.yaml` with one `<signature>.safetensors` per model of the bag.
No registry reachable here ships those weights, so on a stock server the model is listed
as unavailable with the reason; tests/test_audio_separate.py runs this code on tiny
randomly initialised networks.

Stems are the model's sources, grouped as the API sends them: the last stem of a count is
the sum of the sources the others do not name (2 stems: vocals + accompaniment). The
configured models are all loaded and a count is served by the first that has its sources:
with both installed, `htdemucs` makes 2 and 4 stems and `htdemucs_6s` 5 and 6; alone,
`htdemucs_6s` makes all four counts (guitar and piano go to "other" in 4 stems).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechmesh.common.errors import ModelUnavailable

MODEL_ID = "demucs"
NAMES = ("htdemucs", "htdemucs_6s")
SAMPLE_RATE = 44100  # every released Demucs v4 model's
STEMS = {
    2: ("vocals", "accompaniment"),
    4: ("vocals", "drums", "bass", "other"),
    5: ("vocals", "drums", "bass", "piano", "other"),
    6: ("vocals", "drums", "bass", "guitar", "piano", "other"),
}
# apply_model cuts input into the model's training segment (7.8 s for htdemucs) with this
# overlap and cross-fades; no random time shifts, so a request gives the same stems twice.
OVERLAP = 0.25


class DemucsSeparator:
    def __init__(self, folder: Path, threads: int = 2, names: Sequence[str] = NAMES) -> None:
        self._path = folder
        self._threads = threads
        self._names = tuple(names)
        self._models: list[Any] = []
        self._torch: Any = None
        self.sample_rate = SAMPLE_RATE
        self.stem_counts: tuple[int, ...] = ()

    def load(self) -> None:
        installed = [name for name in self._names if _installed(self._path, name)]
        if not installed:
            raise ModelUnavailable(
                f"Demucs weights are not installed on this server (looked for {', '.join(self._names)} in the "
                "models folder's demucs folder; see docs/deploy.md)",
                detail=f"looked in {self._path}/ for {', '.join(self._names)}",
            )
        import torch

        torch.set_num_threads(self._threads)
        try:
            models = [_read(self._path, name) for name in installed]
        except ImportError:
            raise  # a package missing, not a broken file: the registry reports it as that
        # Reading runs pickle or safetensors, yaml and each model's constructor on files a
        # person copied: a broken one fails in any of them, and means the same to a client.
        except Exception as error:
            raise ModelUnavailable(
                "This server cannot read the Demucs weights; the service's log says why.",
                detail=f"{self._path}/: {error!r}",
            ) from error
        except SystemExit as error:  # demucs exits the process when a quantized model needs diffq
            raise ModelUnavailable(
                "This server's Demucs weights are quantized and need the diffq package, which is not installed.",
                detail=f"{self._path}/: {', '.join(installed)}",
            ) from error
        self._torch = torch
        self._models = models
        self.sample_rate = int(models[0].samplerate)
        self.stem_counts = tuple(count for count in STEMS if self._model_for(count) is not None)

    def warm_up(self) -> None:
        noise = np.random.default_rng(0).standard_normal((self.sample_rate, 2)).astype(np.float32)
        self.separate(0.1 * noise, self.stem_counts[0])

    def separate(self, audio: np.ndarray, stems: int) -> dict[str, np.ndarray]:
        model = self._model_for(stems)
        samples = np.asarray(audio, np.float32)
        planar = samples.reshape(len(samples), -1).T  # (channels, frames)
        sources = dict(zip(model.sources, self._run(model, planar), strict=True))
        names = STEMS[stems]
        out = {name: sources.pop(name) for name in names[:-1]}
        out[names[-1]] = sum(sources.values(), np.zeros_like(planar))
        return {name: stem.T.reshape(samples.shape).astype(np.float32) for name, stem in out.items()}

    def _model_for(self, stems: int) -> Any:
        """The first loaded model with every source the count names (None: none has)."""
        named = set(STEMS[stems][:-1])
        return next((model for model in self._models if named <= set(model.sources)), None)

    def _run(self, model: Any, planar: np.ndarray) -> np.ndarray:
        """(sources, channels, frames). A model is trained on stereo: any other channel is
        run as dual mono, its two outputs averaged."""
        if len(planar) == model.audio_channels:
            return self._apply(model, planar)
        dual = [self._apply(model, np.repeat(channel[None], model.audio_channels, axis=0)) for channel in planar]
        return np.stack([stems.mean(axis=1) for stems in dual], axis=1)

    def _apply(self, model: Any, planar: np.ndarray) -> np.ndarray:
        from demucs.apply import apply_model

        mix = self._torch.from_numpy(np.ascontiguousarray(planar))
        # The normalisation demucs's own separator applies: the models were trained on it.
        reference = mix.mean(dim=0)
        mean, std = reference.mean(), reference.std() + 1e-8
        with self._torch.inference_mode():
            out = apply_model(model, ((mix - mean) / std)[None], shifts=0, split=True, overlap=OVERLAP)[0]
        result: np.ndarray = (out * std + mean).numpy()
        return result


def _installed(folder: Path, name: str) -> bool:
    return (folder / f"{name}.yaml").is_file() or (folder / f"{name}.th").is_file()


def _read(folder: Path, name: str) -> Any:
    """The model (or bag of models) `name` from `folder`, in eval mode. `repo` is always
    given: without it demucs fetches from HuggingFace or AWS."""
    from demucs.pretrained import get_model

    bag = folder / f"{name}.yaml"
    if bag.is_file():
        import yaml

        spec = yaml.safe_load(bag.read_text())
        if all((folder / f"{signature}.safetensors").is_file() for signature in spec["models"]):
            return _read_safetensors(folder, spec)
    return get_model(name, repo=folder)


def _read_safetensors(folder: Path, spec: dict[str, Any]) -> Any:
    """A bag as its HuggingFace repository holds it (what demucs.hf.get_hf_model reads)."""
    from demucs.apply import BagOfModels
    from demucs.hf import load_safetensors_model

    models = [load_safetensors_model(folder / f"{signature}.safetensors") for signature in spec["models"]]
    bag = BagOfModels(models, spec.get("weights"), spec.get("segment"))
    bag.eval()
    return bag
