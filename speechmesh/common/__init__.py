"""Transport-free building blocks shared by services, engines and the gateway.

Nothing here imports gRPC or FastAPI, so engines can depend on it freely.
"""
