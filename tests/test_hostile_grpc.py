"""Messages that do not parse, sent straight to the services: INVALID_ARGUMENT, not INTERNAL."""

from __future__ import annotations

import grpc
import pytest

pytestmark = pytest.mark.slow

# SynthesizeRequest.text (field 1, length-delimited) holding bytes that are not UTF-8, and
# bytes that are no protobuf at all (a field number 0 tag).
NOT_UTF8 = b"\x0a\x02\xff\xfe"
GARBAGE = b"\x00\x00\xff\xff\xff"


@pytest.mark.parametrize("data", [NOT_UTF8, GARBAGE], ids=["not-utf8", "garbage"])
async def test_a_unary_request_that_does_not_parse(tts_channel, data: bytes) -> None:
    call = tts_channel.unary_stream("/speechmesh.v1.TextToSpeech/Synthesize")(data)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in call:
            pass
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not parse" in (raised.value.details() or "")


@pytest.mark.parametrize("data", [NOT_UTF8, GARBAGE], ids=["not-utf8", "garbage"])
async def test_a_streamed_request_that_does_not_parse(stt_channel, data: bytes) -> None:
    async def messages():
        yield data

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stt_channel.stream_unary("/speechmesh.v1.SpeechToText/Recognize")(messages())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
