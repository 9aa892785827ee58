"""``eg-docker-orphans``: list (and with ``--remove``, remove) kernel containers and services
that a gateway no longer knows.

The live kernel ids come from the gateway (``--gateway-url``, ``GET /api/kernels``) or from
``--known``; with neither, every kernel container of the gateway id counts as an orphan (use it
when that gateway is stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import httpx

from . import list_orphans, remove_orphans


def _known_from_gateway(url: str, token: str | None) -> list[str]:
    headers = {"Authorization": f"token {token}"} if token else {}
    response = httpx.get(url.rstrip("/") + "/api/kernels", headers=headers, timeout=30)
    response.raise_for_status()
    return [k["id"] for k in response.json()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eg-docker-orphans", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST"), help="engine (default: DOCKER_HOST)")
    parser.add_argument("--gateway-id", default="eg", help="the eg.gateway label value (DockerSettings.gateway_id); '*' for any")
    parser.add_argument("--gateway-url", help="ask this gateway which kernels it runs")
    parser.add_argument("--token", default=os.environ.get("EG_AUTH_TOKEN"), help="the gateway's token (default: EG_AUTH_TOKEN)")
    parser.add_argument("--known", action="append", default=[], metavar="KERNEL_ID", help="a live kernel id (repeatable)")
    parser.add_argument("--remove", action="store_true", help="remove the orphans found")
    parser.add_argument("--json", action="store_true", help="print JSON")
    options = parser.parse_args(argv)
    known = list(options.known)
    if options.gateway_url:
        known += _known_from_gateway(options.gateway_url, options.token)
    gateway_id = None if options.gateway_id == "*" else options.gateway_id
    action = remove_orphans if options.remove else list_orphans
    found = asyncio.run(action(known, docker_host=options.docker_host, gateway_id=gateway_id))
    if options.json:
        json.dump([r.to_json() for r in found], sys.stdout, indent=1)
        print()
    else:
        verb = "removed" if options.remove else "orphan"
        for r in found:
            print(f"{verb}\t{r.kind}\t{r.id[:12]}\t{r.name}\tkernel {r.kernel_id}\t{r.state}")
        if not found:
            print("no orphan kernel containers or services", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
