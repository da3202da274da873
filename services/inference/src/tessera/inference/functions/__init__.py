"""CVAT's lambda functions: the registry, `GET /api/lambda/functions[/{id}]` and online
calls `POST /api/lambda/functions/{id}`."""
