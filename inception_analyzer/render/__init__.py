"""Renderers: records in, text or pictures out. They never recompute a figure."""
