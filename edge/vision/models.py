"""Where the detector weights live on a node, and what to say when they are not there.

The ONNX files are built from registry packages by ``models/build_models.py`` and are never
committed (nor downloaded at run time: district networks are closed), so a missing file is an
installer's to-do, not a bug: the error names the file and the command that makes it.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge.errors import PinganError

MODEL_DIR_ENV = "PINGAN_MODEL_DIR"
DEFAULT_MODEL_DIR = Path("~/.cache/pingan/models")
BUILD_COMMAND = "python models/build_models.py"

# Models the build script makes, by the name a node config uses.
BUILT_MODELS: dict[str, str] = {
    "ssdlite_person": "ssdlite_person.onnx",
    "centernet_coco": "centernet_coco.onnx",
}


class ModelError(PinganError, RuntimeError):
    """A detector model is missing, unreadable or not the model its backend expects."""


def model_dir() -> Path:
    """The folder holding built models: ``$PINGAN_MODEL_DIR`` or ``~/.cache/pingan/models``."""
    raw = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(raw).expanduser() if raw else DEFAULT_MODEL_DIR.expanduser()


def model_path(name: str) -> Path:
    """The path of a built model (``ssdlite_person``) or of an installer's own ``.onnx`` file.

    Raises ``ModelError`` with the command to run when the file is absent, so the agent can
    print one line instead of a traceback.
    """
    if name in BUILT_MODELS:
        path = model_dir() / BUILT_MODELS[name]
        if not path.is_file():
            raise ModelError(
                f"detector model {name!r} is missing: expected {path}. Build it with "
                f"`{BUILD_COMMAND}` (about two minutes, needs PyPI and npm) or copy the built "
                f"file there; set {MODEL_DIR_ENV} to use another folder."
            )
        return path
    path = Path(name).expanduser()
    if path.suffix != ".onnx":
        known = ", ".join(sorted(BUILT_MODELS))
        raise ModelError(f"unknown detector model {name!r}: use one of {known} or a path to an .onnx file")
    if not path.is_file():
        raise ModelError(f"detector model file {path} does not exist")
    return path
