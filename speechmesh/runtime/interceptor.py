"""One server interceptor around every RPC of a service's own methods.

It answers UNAVAILABLE while models load (health says NOT_SERVING meanwhile), turns
typed speechmesh errors into status codes with details (a model still loading after the
load is over never will: MODEL_UNAVAILABLE), hides unexpected exceptions
behind INTERNAL (logged with their traceback, never sent), and records metrics. A request
message that does not parse (bytes that are no protobuf of its type, a string field that is
not UTF-8) is the caller's error, INVALID_ARGUMENT; gRPC itself would answer INTERNAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc

from speechmesh.common.errors import InvalidArgument, ModelLoading, ModelUnavailable, SpeechmeshError
from speechmesh.runtime import metrics
from speechmesh.runtime.catalog import LOAD_STOPPED
from speechmesh.runtime.status import status_code_for, to_grpc_status
from speechmesh.runtime.tracing import RpcSpans, ended

log = logging.getLogger(__name__)

_HANDLER_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class _Malformed:
    """What a request message that does not parse is read as, to be refused in the handler."""


_MALFORMED = _Malformed()
_MALFORMED_MESSAGE = "A request message does not parse as its protobuf type (a string field must be UTF-8)."

# A method handler's behaviors as an aio server calls them; grpc's stubs type them as the
# sync server's (a plain function of a grpc.ServicerContext).
_StreamBehavior = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], AsyncGenerator[Any, None]]
_UnaryBehavior = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], Awaitable[Any]]


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:
            return _MALFORMED

    return parse


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if request is _MALFORMED:
            raise InvalidArgument(_MALFORMED_MESSAGE)
        yield request


def _request(request: Any, streaming: bool) -> Any:
    """The request (iterator) the servicer gets: malformed messages raise InvalidArgument."""
    if streaming:
        return _checked(request)
    if request is _MALFORMED:
        raise InvalidArgument(_MALFORMED_MESSAGE)
    return request


async def _write(context: grpc.aio.ServicerContext[Any, Any], reply: Any) -> None:
    """Sends one reply of a stream. A send that fails means nobody can hear the rest: the
    caller cancelled or its connection dropped, and grpc's own cancel may still be on its
    way. It ends the call as cancelled now, as that cancel would."""
    try:
        await context.write(reply)
    except grpc.aio.AbortError:
        raise
    except Exception as error:
        raise asyncio.CancelledError("the caller is no longer listening") from error


# A status travels in trailing metadata (8 KiB by default): an id a caller sent, echoed
# back whole in the message or a field, must not overflow it (gRPC would then replace the
# status with one of its own).
_MESSAGE_MAX_CHARS = 1000
_FIELD_MAX_CHARS = 200


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def abort(
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    message: str,
    reason: str,
    fields: dict[str, str],
) -> None:
    fields = {key: _clipped(value, _FIELD_MAX_CHARS) for key, value in fields.items()}
    status = to_grpc_status(code, _clipped(message, _MESSAGE_MAX_CHARS), reason, fields)
    await context.abort(status.code, status.details, status.trailing_metadata)


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        service: str,
        gated: tuple[str, ...],
        measured: tuple[str, ...],
        ready: asyncio.Event,
        spans: RpcSpans | None = None,
    ) -> None:
        self._service = service
        self._gated = gated
        self._measured = measured
        self._ready = ready
        self._spans = spans or RpcSpans(None)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        service_name, _, method = handler_call_details.method.lstrip("/").partition("/")
        if handler is None or service_name not in self._measured:
            return handler
        gate = service_name in self._gated
        full_method = handler_call_details.method
        return self._wrap(handler, lambda context: self._around(full_method, method, gate, context))

    @contextlib.asynccontextmanager
    async def _around(
        self, full_method: str, method: str, gate: bool, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        with self._spans.span(full_method, context) as span:
            labels = (self._service, method)
            code = grpc.StatusCode.OK
            started = time.perf_counter()
            metrics.RPC_IN_FLIGHT.labels(*labels).inc()
            try:
                if gate and not self._ready.is_set():
                    code = grpc.StatusCode.UNAVAILABLE
                    await abort(context, code, "Models are loading; retry in a few seconds.", "MODEL_LOADING", {})
                yield
            except SpeechmeshError as error:
                if isinstance(error, ModelLoading) and self._ready.is_set():
                    # Loading is over, so it stopped on an error (logged): this model never will load.
                    error = ModelUnavailable(LOAD_STOPPED, **error.fields)
                code = status_code_for(error)
                await abort(context, code, error.message, error.reason, error.fields)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = context.code() or code
                raise
            except Exception:
                log.exception("unhandled error", extra={"method": method})
                code = grpc.StatusCode.INTERNAL
                await abort(context, code, "Internal server error.", "INTERNAL", {})
            finally:
                seconds = time.perf_counter() - started
                metrics.RPC_IN_FLIGHT.labels(*labels).dec()
                metrics.RPC_TOTAL.labels(*labels, code.name).inc()
                metrics.RPC_SECONDS.labels(*labels).observe(seconds)
                ended(span, code)
                log.info("rpc", extra={"method": method, "code": code.name, "seconds": round(seconds, 4)})

    @staticmethod
    def _wrap(
        handler: grpc.RpcMethodHandler[Any, Any], around: Callable[[Any], Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        streaming = handler.request_streaming
        behavior: Callable[..., Awaitable[Any]]
        if handler.response_streaming:
            inner_stream = cast(_StreamBehavior, handler.unary_stream or handler.stream_stream)

            # Written here, not handed to grpc as a generator: grpc.aio iterates a generator
            # handler in its own frame, and a cancel that lands while it waits to send (a
            # caller who stopped reading) leaves the generator suspended at its `yield`,
            # closed only by the garbage collector: the work behind it kept its place in the
            # pool and the call went uncounted until then.
            async def streamed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
                # The request is checked inside `around`: a `with` item is built once the one
                # before it is entered.
                async with (
                    around(context),
                    contextlib.aclosing(inner_stream(_request(request, streaming), context)) as replies,
                ):
                    async for reply in replies:
                        await _write(context, reply)

            behavior = streamed
        else:
            inner_unary = cast(_UnaryBehavior, handler.unary_unary or handler.stream_unary)

            async def answered(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                async with around(context):
                    return await inner_unary(_request(request, streaming), context)

            behavior = answered
        factory = _HANDLER_FACTORIES[(streaming, handler.response_streaming)]
        return factory(
            behavior,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
