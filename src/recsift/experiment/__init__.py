"""Experiments: the demo pipeline now; config-driven grids, caching and executors later."""
