#!/usr/bin/env python3
"""Vendor GraphiQL's browser assets from the npm registry into hub/edge/static/graphiql/.

The hub serves GraphiQL itself (``hub.edge.graphiql``): a browser that reaches nothing but the
hub gets a working IDE. What is vendored is recorded, with its checksums, in
``hub/edge/static/graphiql/vendor.json`` next to the files, committed with them::

    {"packages": {"react": {"version": "18.3.1", "license": "MIT",
                            "integrity": "sha512-...",           # the npm tarball's (SRI form)
                            "files": {"umd/react.production.min.js": "<sha256 hex>",
                                      "LICENSE": "<sha256 hex>"}}, ...}}

Each file is written to ``<package>/<file name>`` (``react/react.production.min.js``), its
package's LICENSE beside it. The tarballs come from ``npm pack`` (so the machine's npm registry
and proxy settings apply); nothing else is downloaded, nothing is executed.

From the repository root (npm on PATH)::

    python3 tools/vendor_graphiql.py            # re-fetch the pinned tarballs, check them against
                                                # vendor.json, (re)write the files
    python3 tools/vendor_graphiql.py --check    # the same checks, then compare with the files in
                                                # the tree; writes nothing; exit 1 on a difference
    python3 tools/vendor_graphiql.py --record   # after changing a version or a file list in
                                                # vendor.json: record what npm serves now

The vendored files are npm's bytes, unmodified: ``sha256sum`` of a file in the tree equals its
entry in vendor.json (tests/edge/test_graphiql.py checks that without the network).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "hub" / "edge" / "static" / "graphiql"
LOCK = STATIC / "vendor.json"


class VendorError(Exception):
    pass


def _pack(name: str, version: str, into: Path) -> Path:
    """``npm pack name@version`` into ``into``: the tarball's path."""
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError("npm is not on PATH")
    result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [npm, "pack", f"{name}@{version}", "--json", "--pack-destination", str(into)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise VendorError(f"npm pack {name}@{version} failed:\n{result.stderr.strip()}")
    filename = json.loads(result.stdout)[0]["filename"]
    return into / filename


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _extract(tarball: Path, wanted: list[str]) -> dict[str, bytes]:
    """The named files of an npm tarball (members live under ``package/``); read, not extracted."""
    out: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("package/")
            if name in wanted and member.isfile():
                stream = tar.extractfile(member)
                assert stream is not None
                out[name] = stream.read()
    missing = sorted(set(wanted) - set(out))
    if missing:
        raise VendorError(f"{tarball.name} has no {', '.join(missing)}")
    return out


def destination(package: str, file: str) -> Path:
    return STATIC / package / Path(file).name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="compare only; write nothing")
    action.add_argument("--record", action="store_true", help="record what npm serves now")
    args = parser.parse_args(argv)

    lock = json.loads(LOCK.read_text(encoding="utf-8"))
    problems: list[str] = []
    writes: dict[Path, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package, spec in lock["packages"].items():
            tarball = _pack(package, spec["version"], Path(tmp))
            data = tarball.read_bytes()
            integrity = _integrity(data)
            print(f"{package}@{spec['version']}  {integrity}")
            if args.record:
                spec["integrity"] = integrity
            elif integrity != spec.get("integrity"):
                raise VendorError(
                    f"{package}@{spec['version']}: the registry's tarball is {integrity}, "
                    f"vendor.json records {spec.get('integrity')}"
                )
            files = _extract(tarball, list(spec["files"]))
            for file, content in files.items():
                digest = hashlib.sha256(content).hexdigest()
                print(f"  {digest}  {file}")
                if args.record:
                    spec["files"][file] = digest
                elif digest != spec["files"][file]:
                    raise VendorError(f"{package}/{file}: sha256 {digest}, vendor.json records "
                                      f"{spec['files'][file]}")  # fmt: skip
                target = destination(package, file)
                if args.check:
                    if not target.is_file() or target.read_bytes() != content:
                        problems.append(f"{target.relative_to(ROOT)} differs from {package}@"
                                        f"{spec['version']}'s {file}")  # fmt: skip
                else:
                    writes[target] = content
    for target, content in writes.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if args.record:
        LOCK.write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VendorError as exc:
        print(f"vendor_graphiql: {exc}", file=sys.stderr)
        sys.exit(2)
