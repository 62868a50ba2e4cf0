"""`python -m gateway`: serve the REST API with uvicorn."""

import uvicorn

from gateway.app import create_app
from gateway.http_protocol import http_protocol
from gateway.settings import GatewaySettings
from speechmesh.common.logging import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        http=http_protocol(settings.header_timeout_seconds),
    )


if __name__ == "__main__":
    main()
