"""Import of annotation files: readers per format, matching to a task, writing through
the annotations service."""
