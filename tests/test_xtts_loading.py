"""The XTTS-v2 engine's loading and synthesis code, run for real on a tiny random XTTS.

No registry reachable here ships the XTTS-v2 weights, so this builds a randomly initialised
XTTS with coqui-tts (1 GPT layer, 64 channels, a character vocabulary, two speakers whose
latents come from noise), saves it in the release's layout (xtts-v2/ with config.json,
model.pth, vocab.json, speakers_xtts.pth) and loads it through XttsSynthesizer. The audio
is noise: what is checked is that the files, calls and shapes fit the coqui-tts API.
`make test` installs coqui-tts (the opt-in `xtts` extra), so this runs in CI; the last test
plays a lean install (`make install` without EXTRAS=xtts), where the packages are missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from services.tts.engines.xtts import FILES, XttsSynthesizer, frontend_installed
from services.tts.registry import build_engines
from services.tts.settings import TtsSettings, XttsSettings
from services.tts.synthesizer import SynthesisOptions
from speechmesh.common.errors import ModelUnavailable
from speechmesh.v1 import models_pb2, models_pb2_grpc, tts_pb2, tts_pb2_grpc
from tests.conftest import running_service, wait_serving

pytestmark = pytest.mark.slow

SPEAKERS = ("Ana Florence", "Claribel Dervla")


def build_tiny_xtts(models_dir: Path) -> None:
    from tokenizers import Tokenizer, models
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    folder = models_dir / "xtts-v2"
    folder.mkdir(parents=True)
    config = XttsConfig()
    specials = ["[STOP]", "[UNK]", "[SPACE]", "[START]", *(f"[{code}]" for code in config.languages)]
    vocab = {token: i for i, token in enumerate([*specials, *"abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(folder / "vocab.json"))

    args = config.model_args
    args.gpt_layers, args.gpt_n_model_channels, args.gpt_n_heads, args.decoder_input_dim = 1, 64, 2, 64
    args.gpt_num_audio_tokens, args.gpt_start_audio_token, args.gpt_stop_audio_token = 34, 32, 33
    args.gpt_max_audio_tokens = 12  # at most 9 codes: ~0.4 s of audio
    args.gpt_use_perceiver_resampler = True  # as in v2
    config.save_json(str(folder / "config.json"))

    torch.manual_seed(0)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(folder / "vocab.json")
    model.init_models()
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    model.eval()
    speakers = {}
    for name in SPEAKERS:  # latents computed by the model itself, from 2 s of noise
        audio = torch.randn(1, 44100) * 0.1
        speakers[name] = {
            "gpt_cond_latent": model.get_gpt_cond_latents(audio, 22050),
            "speaker_embedding": model.get_speaker_embedding(audio, 22050),
        }
    torch.save(speakers, folder / "speakers_xtts.pth")


@pytest.fixture(scope="module")
def xtts(tmp_path_factory) -> XttsSynthesizer:
    models_dir = tmp_path_factory.mktemp("models")
    build_tiny_xtts(models_dir)
    engine = XttsSynthesizer(models_dir, XttsSettings(threads=2))
    engine.load()
    return engine


def test_xtts_lists_the_speakers_of_speakers_xtts_pth(xtts: XttsSynthesizer) -> None:
    cards = {card.id: card for card in xtts.voices()}
    assert cards.keys() == {"xtts-ana-florence", "xtts-claribel-dervla"}
    assert {card.name for card in cards.values()} == set(SPEAKERS)
    card = cards["xtts-ana-florence"]
    assert card.model == "xtts" and card.sample_rate == 24000
    assert card.languages[0] == "en" and {"fr", "de", "ko", "hi"} <= set(card.languages)
    # Japanese and Chinese need coqui-tts's optional romanizers (cutlet, pypinyin).
    assert {"ja", "zh"} & set(card.languages) == {code for code in ("ja", "zh") if frontend_installed(code)}


def test_xtts_model_card_lists_the_languages_its_voices_speak(xtts: XttsSynthesizer) -> None:
    from services.tts.registry import build_registry
    from services.tts.settings import TtsSettings

    listed = next(card for card in build_registry(TtsSettings(engines=[])).models() if card.id == "xtts").languages
    assert set(listed) == set(next(iter(xtts.voices())).languages)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_xtts_synthesizes_float32_pcm_at_its_rate(xtts: XttsSynthesizer, language: str) -> None:
    torch.manual_seed(0)
    blocks = list(xtts.synthesize("Hello there, how are you?", SynthesisOptions("xtts-ana-florence", language, 1.0)))
    assert blocks
    for block in blocks:
        assert block.sample_rate == 24000
        assert block.samples.dtype == np.float32 and block.samples.ndim == 1 and block.samples.size > 0
        assert np.isfinite(block.samples).all()


def test_xtts_cuts_text_over_its_character_limit(xtts: XttsSynthesizer) -> None:
    torch.manual_seed(0)
    text = "This sentence keeps going, clause after clause, " * 6  # ~290 characters; the English limit is 250
    blocks = list(xtts.synthesize(text, SynthesisOptions("xtts-ana-florence", "en", 1.0)))
    assert len(blocks) == 2


def test_unreadable_weights_make_xtts_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "xtts-v2"
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes(b"")
    with pytest.raises(ModelUnavailable, match="cannot read XTTS-v2"):
        XttsSynthesizer(tmp_path, XttsSettings()).load()


async def test_without_the_xtts_extra_the_model_is_listed_unavailable_with_the_reason(
    tmp_path: Path, monkeypatch
) -> None:
    # A lean install: neither coqui-tts nor torch can be imported (this process imported
    # both above, so every module of theirs is hidden). Weight files are there, so the
    # reason must come from the packages, not from the weights.
    hidden = [name for name in sys.modules if name.split(".")[0] in ("TTS", "torch")]
    for name in [*hidden, "TTS", "torch"]:
        monkeypatch.setitem(sys.modules, name, None)
    (tmp_path / "xtts-v2").mkdir()
    for name in FILES:
        (tmp_path / "xtts-v2" / name).write_bytes(b"")
    engines = build_engines(TtsSettings(engines=["xtts"], cloners=[], default_model="xtts", models_dir=tmp_path))
    async with running_service(engines) as port:
        await wait_serving(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            listed = await models_pb2_grpc.ModelCatalogStub(channel).ListModels(models_pb2.ListModelsRequest())
            xtts = next(model for model in listed.models if model.id == "xtts")
            assert xtts.state == models_pb2.UNAVAILABLE
            assert "'xtts' extra" in xtts.unavailable_reason
            assert "make install EXTRAS=xtts" in xtts.unavailable_reason
            assert str(tmp_path) not in xtts.unavailable_reason  # client-facing: no server paths
            stub = tts_pb2_grpc.TextToSpeechStub(channel)
            for rpc in (stub.Synthesize, stub.SynthesizeStream):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    async for _ in rpc(tts_pb2.SynthesizeRequest(text="Hello.", model="xtts"), timeout=30):
                        pass
                assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
                assert "make install EXTRAS=xtts" in (caught.value.details() or "")
