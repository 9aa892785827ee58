"""``eg-k8s-prepull``: pull kernel images on every node of the cluster that lacks them, through
the kubelet (a short-lived pod per node and image, see :mod:`eg_k8s._prepull`).

``eg-gateway doctor`` names the images its eg-k8s kernelspecs (and so their warm pools) use
that some node lacks, with this command to run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from ._settings import KubernetesSettings


async def _run(images: list[str], namespace: str, pull_secrets: list[str]) -> int:
    from . import _api as api
    from ._prepull import pull

    try:
        results = await pull(images, namespace, pull_secrets)
    finally:
        api.close()
    for (node, image), error in sorted(results.items()):
        print(f"{'pulled' if error is None else 'FAILED'}\t{node}\t{image}{'' if error is None else chr(9) + error}")
    if not results:
        print("every node has every image", file=sys.stderr)
    return 1 if any(results.values()) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eg-k8s-prepull", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--kubeconfig", default="", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config or in-cluster)")
    parser.add_argument("--context", default="", help="kubeconfig context")
    parser.add_argument("--namespace", default="default", help="namespace of the pulling pods (default: default)")
    parser.add_argument("--pull-secret", action="append", default=[], help="an image pull Secret in that namespace (repeatable)")
    options = parser.parse_args(argv)
    settings = {"context": options.context, **({"kubeconfig": options.kubeconfig} if options.kubeconfig else {})}
    KubernetesSettings.instance(**settings)
    return asyncio.run(_run(options.images, options.namespace, options.pull_secret))


if __name__ == "__main__":
    sys.exit(main())
