"""Loading YAML with line numbers: every mapping remembers its line and each key's line,
every list each item's line, so validation can say `FILE:LINE: path: problem`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


class Mapping(dict):
    """A YAML mapping that remembers its line, each key's line and any repeated key."""

    line: int = 0
    key_lines: dict[Any, int]
    repeated: list[tuple[Any, int]]


class Sequence(list):
    """A YAML sequence that remembers its line and each item's line."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Mapping:
    loader.flatten_mapping(node)
    mapping = Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines, mapping.repeated = {}, []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            key = str(key)
        if key == "value" and isinstance(value_node, yaml.ScalarNode):
            # A value is the text as written: `10` stays "10", `yes` stays "yes", `0755`
            # stays "0755" — YAML's typing would silently turn them into 10, True and 493.
            value = value_node.value
        else:
            value = loader.construct_object(value_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in mapping:
            mapping.repeated.append((key, line))
        mapping[key] = value
        mapping.key_lines[key] = line
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> Sequence:
    sequence = Sequence(loader.construct_object(child, deep=True) for child in node.value)
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [child.start_mark.line + 1 for child in node.value]
    return sequence


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


@dataclass(frozen=True, order=True)
class ConfigError:
    filename: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.filename}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigInvalid(Exception):
    """The file is wrong; `errors` lists every problem, str() gives one per line."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(set(errors))
        super().__init__("\n".join(str(e) for e in self.errors))


def load(text: str, filename: str = "config.yaml") -> Any:
    """Parse YAML safely, keeping line numbers (see Mapping and Sequence)."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigInvalid(
            [ConfigError(filename, line, "", f"invalid YAML: {problem}.")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigInvalid([ConfigError(filename, 1, "", f"invalid YAML: {exc}.")]) from None
