"""A streamed response that closes its body iterator when it ends, however it ends.

When the client leaves while Starlette's StreamingResponse is inside `send`, the request's
task is cancelled there and the body iterator is left suspended at its `yield`: the
upstream gRPC stream's `finally: call.cancel()` then runs only when the iterator is
finalized, which a reference cycle can put off until the garbage collector runs, minutes in
a busy process. Meanwhile the service keeps the call, blocked on a stream nobody reads
(tests/test_gateway_tts.py's hang-up test caught it as a rare timeout). Closing the iterator
here cancels the upstream call at once.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import StreamingResponse


class ClosingStreamingResponse(StreamingResponse):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()
