"""speechmesh: shared code of every service and the gateway.

`speechmesh.v1` is generated from `protos/` by `make proto`; `speechmesh.common` holds
transport-free code (errors, limits, model cards, settings, codecs) that engines may use;
`speechmesh.runtime` starts any gRPC service the same way.
"""
