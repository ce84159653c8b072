"""Subcommands for configuration and data sources."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-config", help="validate a study config and print it with defaults")
    p.add_argument("config", help="YAML config file")
    p.add_argument("--quiet", action="store_true", help="print nothing when it is valid")
    p.set_defaults(func=check_config)

    p = sub.add_parser("fetch", help="fetch a data file by URL (or from the mirror) with SHA-256")
    p.add_argument("--url", help="http(s) or file URL")
    p.add_argument("--path", help="local file instead of a URL")
    p.add_argument("--sha256", help="expected SHA-256 (required with --url)")
    p.add_argument("--out", required=True, help="destination file")
    p.add_argument("--mirror", help="offline mirror folder (default: $DUALBENCH_DATA_MIRROR)")
    p.set_defaults(func=fetch)


def check_config(args: argparse.Namespace) -> int:
    from dualbench.config import load_config

    config = load_config(args.config)
    if not args.quiet:
        print(json.dumps(config, indent=2))
    return 0


def fetch(args: argparse.Namespace) -> int:
    from dualbench.fetch import fetch as fetch_source

    if bool(args.url) == bool(args.path):
        raise ValueError("give exactly one of --url and --path")
    if args.url and not args.sha256:
        raise ValueError("--url needs --sha256")
    source = {"url": args.url} if args.url else {"path": args.path}
    if args.sha256:
        source["sha256"] = args.sha256
    fetch_source(source, args.out, mirror=args.mirror)
    return 0
