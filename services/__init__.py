"""speechmesh's gRPC services, one package per independently scaled capability."""
