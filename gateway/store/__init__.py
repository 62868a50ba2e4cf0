"""The gateway's storage behind async interfaces: API keys and the clone audit today
(credits, tasks, results and conversations join them).

Each store is a small Protocol (`keys.KeyStore`, `audit.CloneAudit`) with one SQL
implementation on SQLAlchemy's async engine: SQLite through aiosqlite (its own thread, off
the event loop) by default, PostgreSQL through asyncpg by URL with the same code. A store on
another kind of server (Redis) is a second class of the same Protocol.
"""
