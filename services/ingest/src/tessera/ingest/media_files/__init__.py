"""A task's media as the files it came from, for task backups (the export service)."""
