"""Pure planning: desired resources x observed facts -> :class:`Plan`."""

from stackctl.plan.model import Action, AttributeChange, Change, Plan, Summary
from stackctl.plan.planner import make_plan

__all__ = ["Action", "AttributeChange", "Change", "Plan", "Summary", "make_plan"]
