"""``stackctl watch``: the unattended GitOps agent, a second face over :mod:`stackctl.session`.

It converges every stack at start, then again whenever the engine reports a change to one
of their containers, a spec changes on disk, the checkout moves (``--git``) or the
interval passes; failing stacks back off, an unreachable engine is waited for. It prints
nothing itself: log records go to a writer the CLI gives it.
"""

from stackctl.agent.agent import Agent
from stackctl.agent.options import Options, parse_duration

__all__ = ["Agent", "Options", "parse_duration"]
