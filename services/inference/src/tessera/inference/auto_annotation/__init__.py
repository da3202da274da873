"""CVAT's auto-annotation requests (`/api/lambda/requests`): a detector over every frame
of a task or a job, in the background, on a JetStream work queue (`service` accepts and
reports them, `runner` does them)."""
