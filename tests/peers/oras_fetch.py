"""Reads an artifact back from a registry with the PyPI `oras` client: an independent
check of what kiln pushed.

usage: oras_fetch.py REF [--insecure | --ca FILE]
  REF         HOST:PORT/REPO:TAG (or @sha256:...)
  --insecure  plain http
  --ca FILE   https, trusting only the CA certificate in FILE
Credentials, if any, come from ORAS_USER and ORAS_PASS (never argv): oras's own
basic-auth backend reads them.

Prints one JSON object on stdout:
  {"manifest": {...}, "config": {...}, "layer_sha256": "sha256:..."}
where `config` is the config blob parsed as JSON and `layer_sha256` is the digest
computed over the bytes of the first layer as downloaded. Fails (exit 1) when a blob's
bytes do not match the digest or size its descriptor gives.
"""

import argparse
import hashlib
import json
import os
import sys

import oras.provider


def fetch_blob(registry, container, descriptor):
    response = registry.get_blob(container, descriptor["digest"])
    response.raise_for_status()
    data = response.content
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if len(data) != descriptor["size"]:
        sys.exit(
            f"{descriptor['digest']}: got {len(data)} bytes,"
            f" descriptor says {descriptor['size']}"
        )
    return data, digest


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ref")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--insecure", action="store_true")
    transport.add_argument("--ca")
    args = parser.parse_args()

    registry = oras.provider.Registry(
        insecure=args.insecure,
        tls_verify=args.ca if args.ca else True,
        auth_backend="basic" if os.environ.get("ORAS_USER") else "token",
    )
    container = registry.get_container(args.ref)

    manifest = registry.get_manifest(container)
    config, config_digest = fetch_blob(registry, container, manifest["config"])
    if config_digest != manifest["config"]["digest"]:
        sys.exit(
            f"config: got {config_digest}, manifest says {manifest['config']['digest']}"
        )
    _, layer_digest = fetch_blob(registry, container, manifest["layers"][0])

    json.dump(
        {
            "manifest": manifest,
            "config": json.loads(config),
            "layer_sha256": layer_digest,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
