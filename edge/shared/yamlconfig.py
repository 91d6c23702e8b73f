"""Load a YAML file into a pydantic model, with errors that name the field and the line.

An installer editing a config on an SD card should read "alarm_button (line 12): Input should
be a valid integer", not a traceback. PyYAML's composed node tree keeps each key's position,
so a pydantic error location maps back to a line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from edge.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Walk the composed YAML tree along a pydantic error location; return a 1-based line."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    best = key.start_mark.line + 1
                    node = value
                    break
            else:
                return best
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            return best
    return best


def validation_problems(exc: ValidationError, tree: yaml.Node | None) -> list[dict[str, Any]]:
    """Each pydantic error as {loc, line, msg, type}, with the YAML line when the tree has one."""
    problems = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field; check its spelling against firmware_config/*.example.yaml"
        elif err.get("type") == "missing":
            msg = "required field is missing"
        problems.append({"loc": [str(p) for p in loc], "line": _line_of(tree, loc), "msg": msg,
                         "type": err.get("type", "value_error")})
    return problems


def format_validation_error(exc: ValidationError, path: Path | str, tree: yaml.Node | None) -> str:
    return _format(validation_problems(exc, tree), path)


def _format(problems: list[dict[str, Any]], path: Path | str) -> str:
    lines = [f"{path}: {len(problems)} problem(s) in the config:"]
    for p in problems:
        field = ".".join(p["loc"]) or "(top level)"
        where = f" (line {p['line']})" if p["line"] else ""
        lines.append(f"  - {field}{where}: {p['msg']}")
    return "\n".join(lines)


def load_yaml_model(path: str | os.PathLike[str], model: type[M]) -> M:
    """Read and validate ``path``; raise ConfigError with a readable, line-numbered message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; copy one from firmware_config/") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    return load_yaml_text(text, model, path)


def load_yaml_text(text: str, model: type[M], source: Path | str = "<config>") -> M:
    """Validate YAML (or JSON, which is YAML) text; ConfigError names each field and its line."""
    try:
        tree = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{where}: not valid YAML: {problem}", [
            {"loc": [], "line": mark.line + 1 if mark else None, "msg": f"not valid YAML: {problem}",
             "type": "yaml_error"}]) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError(f"{source}: not valid YAML: nested too deeply", [
            {"loc": [], "line": None, "msg": "not valid YAML: nested too deeply", "type": "yaml_error"}]) from None
    if data is None:
        raise ConfigError(f"{source}: the config file is empty",
                          [{"loc": [], "line": None, "msg": "the config is empty", "type": "missing"}])
    if not isinstance(data, dict):
        msg = f"the config must be a mapping of fields, not {type(data).__name__}"
        raise ConfigError(f"{source}: {msg}", [{"loc": [], "line": 1, "msg": msg, "type": "dict_type"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, tree)
        raise ConfigError(_format(problems, source), problems) from None


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write a file so that a power cut leaves either the old or the new content, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
