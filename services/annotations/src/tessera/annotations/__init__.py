"""Tessera annotations service: the source of truth for users, projects, tasks, jobs and shapes."""

__version__ = "0.1.0"
