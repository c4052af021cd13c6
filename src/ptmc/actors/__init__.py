"""Threads that free or walk PTE tables, written once for every model (one module per actor family)."""
