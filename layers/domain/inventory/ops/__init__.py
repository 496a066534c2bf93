"""Operators' commands, run from a workstation or CI, never by a function: `python -m inventory.ops`.

They live in the layer only to use the same models and names as the functions; no handler imports
this package, so none pays for it at cold start.
"""
