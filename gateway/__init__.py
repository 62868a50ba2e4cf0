"""REST gateway: the documented /v1/ JSON API mapped onto the gRPC services.

Thin by design: it authenticates, validates the documented parameters, calls the
services, and turns gRPC status codes into the documented error JSON. No model code.
"""
