"""Long requests as tasks: the gateway stores the request and enqueues it (`queue.py`), a
worker process (`python -m gateway.worker`) runs it against the services (`runner.py`), stores
its result for 24 hours and POSTs the signed webhook (`webhooks.py`)."""
