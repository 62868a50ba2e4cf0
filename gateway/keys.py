"""`python -m gateway.keys`: create, list and revoke API keys in the gateway's database.

python -m gateway.keys create --name my-app --plan pro --credits 500
python -m gateway.keys list
python -m gateway.keys revoke 3
python -m gateway.keys credits 3                  # balance and the latest ledger entries
python -m gateway.keys credits 3 --grant 1000 --note "invoice 42"
python -m gateway.keys webhook-secret 3           # a new signing secret, shown this once
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
    create.add_argument("--credits", type=int, default=0, help="starting balance (default: 0)")
    commands.add_parser("list", help="list keys (never their secrets)")
    revoke = commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    credits = commands.add_parser("credits", help="show a key's balance and ledger, or grant credits")
    credits.add_argument("id", type=int)
    credits.add_argument("--grant", type=int, help="credits to add")
    credits.add_argument("--note", default="granted by an operator", help="why, for the ledger")
    secret = commands.add_parser("webhook-secret", help="make a key's webhook signing secret and print it once")
    secret.add_argument("id", type=int)
    return asyncio.run(_run(parser.parse_args(argv)))


async def _run(args: argparse.Namespace) -> int:
    stores = await open_stores(GatewaySettings())
    try:
        if args.command == "create":
            key, secret = await stores.keys.create(args.name, args.plan)
            if args.credits > 0:
                await stores.credits.grant(key.id, args.credits, "starting balance")
            print(secret)
        elif args.command == "list":
            for key in await stores.keys.list():
                state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
                print(f"{key.id}\t{key.prefix}...\t{key.plan}\t{key.name}\t{key.created_at}\t{state}")
        elif args.command == "credits":
            if args.grant is not None:
                if args.grant <= 0:
                    print("--grant takes a positive number of credits", file=sys.stderr)
                    return 1
                await stores.credits.grant(args.id, args.grant, args.note)
            print(f"balance\t{await stores.credits.balance(args.id)}")
            for entry in await stores.credits.ledger(args.id):
                print(f"{entry.created_at}\t{entry.kind}\t{entry.amount}\t{entry.route}\t{entry.reference}")
        elif args.command == "webhook-secret":
            print(await stores.webhook_secrets.rotate(args.id))
        elif not await stores.keys.revoke(args.id):
            print(f"no active key with id {args.id}", file=sys.stderr)
            return 1
    finally:
        await stores.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
