"""Renderers: each turns a Result into one format, and never explores anything itself."""
