"""A plan is plain data: changes, each with an action and a separate human reason.

Modelled on Terraform's ``internal/plans``: the action says *what* happens to a resource
(``Action``), the reason says *why*, and ``attributes`` say which values move and which
of them force a replacement. The applier executes a Plan and decides nothing itself.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Optional

import attrs

from stackctl.resources import Resource

if TYPE_CHECKING:
    import networkx as nx

FORMAT_VERSION = "1"


class Action(str, enum.Enum):
    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    RESTART = "restart"
    REPLACE = "replace"
    DELETE = "delete"

    @property
    def json(self) -> list[str]:
        """The action list of Terraform's JSON plan (``replace`` is delete then create)."""
        return ["delete", "create"] if self is Action.REPLACE else [self.value]


@attrs.frozen
class AttributeChange:
    """One attribute whose value moves; ``forces_replacement`` marks the culprit."""

    name: str
    before: Any
    after: Any
    forces_replacement: bool = False


@attrs.frozen
class Change:
    """What happens to one address, and why."""

    address: str
    action: Action
    reason: str = ""
    before: Optional[dict[str, Any]] = None
    after: Optional[dict[str, Any]] = None
    attributes: tuple[AttributeChange, ...] = ()
    resource: Optional[Resource] = None  # desired resource; None for a delete
    container_id: Optional[str] = None  # the existing object acted on (id; a volume's name)
    container_name: Optional[str] = None
    cause: Optional[str] = None  # address whose change forced this one
    kind: str = "container"  # what container_id names: container | network | volume


@attrs.frozen
class Summary:
    add: int = 0
    change: int = 0
    destroy: int = 0

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.destroy)


@attrs.frozen
class Plan:
    """The changes for one stack, the dependency edges between them, and the state
    fingerprint they were computed against."""

    stack: str
    changes: tuple[Change, ...]
    edges: tuple[tuple[str, str], ...]  # (dependency, dependent)
    fingerprint: str
    destroy: bool = False
    format_version: str = FORMAT_VERSION

    def graph(self) -> "nx.DiGraph[str]":
        import networkx as nx  # imported on use: it costs ~100 ms of start-up

        g: nx.DiGraph[str] = nx.DiGraph()
        for change in self.changes:
            g.add_node(change.address, action=change.action.value)
        g.add_edges_from(e for e in self.edges if e[0] in g and e[1] in g)
        return g

    def images(self, needed_only: bool = True) -> list[str]:
        """Images the plan creates from (checked before anything is destroyed); with
        ``needed_only=False``, every image its resources name."""
        wanted = (Action.CREATE, Action.REPLACE, Action.UPDATE)
        return list(dict.fromkeys(
            image for c in self.changes if c.resource is not None
            and (not needed_only or c.action in wanted) for image in c.resource.images))

    def dependents(self, address: str) -> set[str]:
        """Every address that depends on ``address``, directly or not.

        A plain walk over ``edges``: the applier needs only this, and importing networkx
        for it would cost every apply ~130 ms of start-up.
        """
        children: dict[str, list[str]] = {}
        for dep, dependent in self.edges:
            children.setdefault(dep, []).append(dependent)
        seen: set[str] = set()
        todo = list(children.get(address, ()))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(children.get(node, ()))
        return seen

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    @property
    def summary(self) -> Summary:
        add = change = destroy = 0
        for c in self.changes:
            if c.action in (Action.CREATE, Action.REPLACE):
                add += 1
            if c.action in (Action.DELETE, Action.REPLACE):
                destroy += 1
            if c.action in (Action.UPDATE, Action.RESTART):
                change += 1
        return Summary(add, change, destroy)

    def change_for(self, address: str) -> Optional[Change]:
        return next((c for c in self.changes if c.address == address), None)
