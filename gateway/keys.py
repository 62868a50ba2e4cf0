"""`python -m gateway.keys`: create, list and revoke API keys in the gateway's database.

python -m gateway.keys create --name my-app --plan pro
python -m gateway.keys list
python -m gateway.keys revoke 3
"""

from __future__ import annotations

import argparse
import sys

from gateway.keystore import KeyStore
from gateway.plans import PLANS
from gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.keys", description="Manage speechmesh API keys.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--plan", default="pro", choices=sorted(PLANS), help="account plan (default: pro)")
    commands.add_parser("list", help="list keys (never their secrets)")
    revoke = commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    args = parser.parse_args(argv)

    store = KeyStore(GatewaySettings().database_path)
    try:
        if args.command == "create":
            _, secret = store.create(args.name, args.plan)
            print(secret)
        elif args.command == "list":
            for key in store.list():
                state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
                print(f"{key.id}\t{key.prefix}...\t{key.plan}\t{key.name}\t{key.created_at}\t{state}")
        elif not store.revoke(args.id):
            print(f"no active key with id {args.id}", file=sys.stderr)
            return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
