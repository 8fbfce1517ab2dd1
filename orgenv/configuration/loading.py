"""Loading YAML with line numbers: every mapping remembers its line and each key's line,
every list each item's line, so validation can say `FILE:LINE: path: problem`.

A configuration file is untrusted input, so loading is bounded before anything is built from
it: the file size (`CONFIG_MAX_BYTES`, checked by `configuration.read`), and, on the parsed
node graph, the nesting depth, the number of list entries (`CONFIG_MAX_ENTRIES`) and how
much aliases may add (an alias is a reference: `*a` repeated can describe 10^9 nodes in 600
bytes). The graph is checked iteratively, so neither a bomb nor deep nesting can exhaust
memory or the Python stack, and only then is it turned into Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from django.conf import settings

# Our format nests about 7 levels; 32 leaves room for anything sensible.
MAX_DEPTH = 32
# How many nodes aliases may add to the document, all aliases together: enough to share a
# list of variables between a few groups, far too little for an alias bomb.
ALIAS_BUDGET = 10_000


def max_entries() -> int:
    return settings.CONFIG_MAX_ENTRIES


def max_bytes() -> int:
    return settings.CONFIG_MAX_BYTES


class Mapping(dict):
    """A YAML mapping that remembers its line, each key's line and any repeated key."""

    line: int = 0
    key_lines: dict[Any, int]
    repeated: list[tuple[Any, int]]


class Sequence(list):
    """A YAML sequence that remembers its line and each item's line."""

    line: int = 0
    item_lines: list[int]


# LibYAML's parser when PyYAML has it (the wheels do): it is about 40 times faster than the
# pure-Python one, and it composes deep documents without Python recursion.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_Base):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Mapping:
    loader.flatten_mapping(node)
    mapping = Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines, mapping.repeated = {}, []
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = loader.construct_object(key_node, deep=True)
        else:
            # No key of the format is a list or a mapping: name its kind, build nothing.
            key = "(a list)" if isinstance(key_node, yaml.SequenceNode) else "(a mapping)"
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
    """Parse YAML safely, keeping line numbers (see Mapping and Sequence); a file beyond the
    limits of the module docstring is refused with the line where it goes beyond them."""
    loader = _LineLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        problem = _beyond_limits(root)
        if problem is not None:
            line, message = problem
            raise ConfigInvalid([ConfigError(filename, line, "", message)])
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigInvalid(
            [ConfigError(filename, line, "", f"invalid YAML: {problem}.")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigInvalid([ConfigError(filename, 1, "", f"invalid YAML: {exc}.")]) from None
    except RecursionError:  # only without LibYAML, whose parser does not recurse in Python
        raise ConfigInvalid(
            [ConfigError(filename, 1, "", f"nested more than {MAX_DEPTH} levels deep.")]
        ) from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _beyond_limits(root: yaml.Node) -> tuple[int, str] | None:
    """(line, problem) if the node graph nests too deep, lists too many entries or expands
    too much through aliases; None if it is within bounds. Linear in the number of distinct
    nodes: an alias is the same node object reached again, and each node is visited once."""
    # Depth first, without recursion: `depth` is the nesting of the first path to a node.
    seen: set[int] = set()
    order: list[yaml.Node] = []  # distinct nodes, parents before children
    entries = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        if depth > MAX_DEPTH:
            return _line(node), f"nested more than {MAX_DEPTH} levels deep."
        if isinstance(node, yaml.SequenceNode):
            if entries + len(node.value) > max_entries():
                over = node.value[max_entries() - entries]
                return _line(over), (
                    f"more than {max_entries()} list entries (CONFIG_MAX_ENTRIES); "
                    "split the file, for example one file per organization."
                )
            entries += len(node.value)
        stack.extend((child, depth + 1) for child in reversed(_children(node)))

    # Expanded sizes, children before parents; a node reached again through an alias adds
    # its whole expanded size, and that is what the budget limits.
    size: dict[int, int] = {}
    open_: set[int] = set()  # on the current path: reaching one again is a cycle
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if children_done:
            size[id(node)] = 1 + sum(size[id(child)] for child in _children(node))
            open_.discard(id(node))
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            return _line(node), "an alias refers to a list or mapping that contains it."
        open_.add(id(node))
        pending.append((node, True))
        pending.extend((child, False) for child in _children(node) if id(child) not in size)
    added = 0
    referenced: set[int] = set()
    for node in order:
        if isinstance(node, yaml.MappingNode):
            # An alias node is its anchor's node, with the anchor's line: the line of an
            # alias used as a value is its key's, of one used as a key its value's.
            uses = [use for k, v in node.value for use in ((k, _line(v)), (v, _line(k)))]
        else:
            uses = [(child, _line(node)) for child in _children(node)]
        for child, line in uses:
            if id(child) in referenced:
                added += size[id(child)]
                if added > ALIAS_BUDGET:
                    return line, (
                        f"aliases expand the file by more than {ALIAS_BUDGET} nodes; "
                        "write the repeated part out instead."
                    )
            referenced.add(id(child))
    return None
