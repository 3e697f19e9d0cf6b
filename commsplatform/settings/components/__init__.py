"""The settings, one module per integration, loaded in order by base.py.

Each module starts from everything the ones before it defined (`from .previous import *`),
so a setting may use any setting above it, as in one file.
"""
