"""Format writers: each streams a `Dataset` into the members of a zip archive."""
