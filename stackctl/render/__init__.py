"""Renderers: a Plan (or status) as text for people, JSON for machines, DOT for graphs."""
