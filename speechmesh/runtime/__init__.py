"""The one way every speechmesh gRPC service starts, serves and stops."""

from speechmesh.runtime.blocking import Blocking
from speechmesh.runtime.server import ServiceSpec, create_server, serve, stop_server

__all__ = ["Blocking", "ServiceSpec", "create_server", "serve", "stop_server"]
