"""One server interceptor around every RPC of a service's own methods.

It answers UNAVAILABLE while models load (health says NOT_SERVING meanwhile), turns
typed speechmesh errors into status codes with details, hides unexpected exceptions
behind INTERNAL (logged with their traceback, never sent), and records metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from speechmesh.common.errors import SpeechmeshError
from speechmesh.runtime import metrics
from speechmesh.runtime.status import status_code_for, to_grpc_status

log = logging.getLogger(__name__)

_HANDLER_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


async def abort(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, reason: str, fields: dict[str, str]
) -> None:
    status = to_grpc_status(code, message, reason, fields)
    await context.abort(status.code, status.details, status.trailing_metadata)


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, gated: tuple[str, ...], measured: tuple[str, ...], ready: asyncio.Event) -> None:
        self._service = service
        self._gated = gated
        self._measured = measured
        self._ready = ready

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        full_method: str = handler_call_details.method  # type: ignore[attr-defined]
        service_name, _, method = full_method.lstrip("/").partition("/")
        if handler is None or service_name not in self._measured:
            return handler
        gate = service_name in self._gated
        return self._wrap(handler, lambda context: self._around(method, gate, context))

    @contextlib.asynccontextmanager
    async def _around(self, method: str, gate: bool, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
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
            metrics.RPC_IN_FLIGHT.labels(*labels).dec()
            metrics.RPC_TOTAL.labels(*labels, code.name).inc()
            metrics.RPC_SECONDS.labels(*labels).observe(time.perf_counter() - started)

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, around: Callable[[Any], Any]) -> grpc.RpcMethodHandler:
        if handler.response_streaming:
            inner_stream = handler.unary_stream or handler.stream_stream

            async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with around(context):
                    async for item in inner_stream(request, context):
                        yield item

        else:
            inner_unary = handler.unary_unary or handler.stream_unary

            async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:  # type: ignore[misc]
                async with around(context):
                    return await inner_unary(request, context)

        factory = _HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
        return factory(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
