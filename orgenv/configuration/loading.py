"""Loading YAML with line numbers: every mapping remembers its line and each key's line,
every list each item's line, so validation can say `FILE:LINE: path: problem`.

A configuration file is untrusted input, so loading is bounded before anything is built from
it. What tells a hostile file from a large organization's is not its size but what it costs
for its size (docs/commands.md, "Limits"): an organization's file costs memory and work in
proportion to its bytes, while a hostile file amplifies. So, besides the file size
(`CONFIG_MAX_BYTES`, checked by `configuration.read`), the parsed node graph is checked for
the three ways a file amplifies: nesting depth, aliases (an alias is a reference: `*a`
repeated can describe 10^9 nodes in 600 bytes) and density — nodes packed tighter than any
organization writes them (`[0,0,0,…]` is a node per 2 bytes, each node ~0.4 KB in memory;
an exported organization takes about 12 bytes per node). The graph is checked iteratively,
so neither a bomb nor deep nesting can exhaust memory or the Python stack, and only then is
it turned into Python objects.
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
# Density: at most one node (a scalar, a list or a mapping) per BYTES_PER_NODE bytes of the
# file, above a floor any small file stays under. export_config writes about 12 bytes per
# node; the tightest thing an organization writes, a list of short project slugs, 4 or more.
BYTES_PER_NODE = 4
MIN_NODES = 50_000


def max_bytes() -> int:
    return settings.CONFIG_MAX_BYTES


def max_nodes(size: int) -> int:
    """How many nodes a file of `size` bytes may hold."""
    return max(MIN_NODES, size // BYTES_PER_NODE)


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
    """The file is wrong; `errors` lists every problem (the first MAX_ERRORS of them, and
    `more` counts the others), str() gives one per line."""

    def __init__(self, errors: list[ConfigError], more: int = 0) -> None:
        self.errors = sorted(set(errors))
        self.more = more
        lines = [str(e) for e in self.errors]
        if more:
            lines.append(
                f"… and {more} more errors (only the first {len(self.errors)} are listed)."
            )
        super().__init__("\n".join(lines))


def load(text: str, filename: str = "config.yaml") -> Any:
    """Parse YAML safely, keeping line numbers (see Mapping and Sequence); a file beyond the
    limits of the module docstring is refused with the line where it goes beyond them."""
    loader = _LineLoader(text)
    try:
        # First the parser's events alone (no node is kept): depth and density are known
        # before anything is built.
        problem, aliased = _beyond_limits(loader, len(text.encode("utf-8", "surrogatepass")))
        if problem is None:
            loader.dispose()
            loader = _LineLoader(text)
            root = loader.get_single_node()
            if root is None:
                return None
            # An alias bomb composes into a few shared nodes; expanding them is the danger.
            problem = _alias_expansion(root) if aliased else None
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


_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
_END_EVENTS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _beyond_limits(loader: _LineLoader, size: int) -> tuple[tuple[int, str] | None, bool]:
    """((line, problem) or None, whether the file uses aliases), from the parser's events of
    a file of `size` bytes: nesting deeper than MAX_DEPTH (a node's depth: 1 for the
    document's, one more for each list or mapping around it), or more nodes than an
    organization's file of that size holds (`max_nodes`)."""
    budget = max_nodes(size)
    nodes = depth = 0
    aliased = False
    while loader.check_event():
        event = loader.get_event()
        if isinstance(event, _NODE_EVENTS):
            nodes += 1
            line = event.start_mark.line + 1
            if depth + 1 > MAX_DEPTH:
                return (line, f"nested more than {MAX_DEPTH} levels deep."), aliased
            if nodes > budget:
                return (
                    line,
                    f"more than {budget} YAML values (scalars, lists and mappings) for a file "
                    f"of {size} bytes: an organization's file holds at most one per "
                    f"{BYTES_PER_NODE} bytes (export_config writes about one per 12), so this "
                    "one is padded or generated, not a configuration.",
                ), aliased
            if not isinstance(event, yaml.ScalarEvent):
                depth += 1
        elif isinstance(event, _END_EVENTS):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliased = True
    return None, aliased


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _alias_expansion(root: yaml.Node) -> tuple[int, str] | None:
    """(line, problem) if aliases expand the node graph by more than ALIAS_BUDGET nodes or
    form a cycle; None if not. Linear in the number of distinct nodes: an alias is the same
    node object reached again, and each node is visited once."""
    seen: set[int] = set()
    order: list[yaml.Node] = []  # distinct nodes, parents before children
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        stack.extend(reversed(_children(node)))

    # Expanded sizes, children before parents; a node reached again through an alias adds
    # its whole expanded size, and that is what the budget limits.
    expanded: dict[int, int] = {}
    open_: set[int] = set()  # on the current path: reaching one again is a cycle
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:
        node, children_done = pending.pop()
        if children_done:
            expanded[id(node)] = 1 + sum(expanded[id(child)] for child in _children(node))
            open_.discard(id(node))
            continue
        if id(node) in expanded:
            continue
        if id(node) in open_:
            return _line(node), "an alias refers to a list or mapping that contains it."
        open_.add(id(node))
        pending.append((node, True))
        pending.extend((child, False) for child in _children(node) if id(child) not in expanded)
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
                added += expanded[id(child)]
                if added > ALIAS_BUDGET:
                    return line, (
                        f"aliases expand the file by more than {ALIAS_BUDGET} nodes; "
                        "write the repeated part out instead."
                    )
            referenced.add(id(child))
    return None
