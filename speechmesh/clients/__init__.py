"""Typed async clients of the speechmesh services, over channels built from one configuration.

The gateway calls the services only through this package, and so does any service that
calls another (chat calls STT and TTS). Nothing here imports a web framework or an
engine: `config` says where each service is, `channels` opens gRPC channels with the
mesh's retry, keepalive, load-balancing and tracing settings, `mesh` holds one client
per service with the health of every channel.
"""
