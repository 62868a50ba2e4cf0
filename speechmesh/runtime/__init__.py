"""The one way every speechmesh gRPC service starts, serves and stops (`server`), and the
pieces it is built from (`blocking`, `interceptor`, `status`, `tracing`, ...).

Import the submodule you use: this package imports none of them, so the gateway can use
`status` without loading the OpenTelemetry SDK.
"""
