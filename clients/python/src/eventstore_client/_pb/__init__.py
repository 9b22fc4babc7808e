"""Stubs generated from proto/ by ``scripts/python.sh proto``. Do not edit.

``scripts/python.sh check-proto`` fails when they are out of date.
"""
