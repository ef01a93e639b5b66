#!/usr/bin/env python3
"""A stand-in program for the submit-file corpus (never run)."""
