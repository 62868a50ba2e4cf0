"""`python -m gateway.keys`: create, list and revoke API keys in the gateway's database.

python -m gateway.keys create --name my-app --plan pro
python -m gateway.keys list
python -m gateway.keys revoke 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from gateway.plans import PLANS
from gateway.settings import GatewaySettings
from gateway.store.stores import open_stores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.keys", description="Manage speechmesh API keys.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--plan", default="pro", choices=sorted(PLANS), help="account plan (default: pro)")
    commands.add_parser("list", help="list keys (never their secrets)")
    revoke = commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    return asyncio.run(_run(parser.parse_args(argv)))


async def _run(args: argparse.Namespace) -> int:
    stores = await open_stores(GatewaySettings())
    try:
        if args.command == "create":
            _, secret = await stores.keys.create(args.name, args.plan)
            print(secret)
        elif args.command == "list":
            for key in await stores.keys.list():
                state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
                print(f"{key.id}\t{key.prefix}...\t{key.plan}\t{key.name}\t{key.created_at}\t{state}")
        elif not await stores.keys.revoke(args.id):
            print(f"no active key with id {args.id}", file=sys.stderr)
            return 1
    finally:
        await stores.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
