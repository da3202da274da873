"""Plumbing shared by the services: settings, database, bus, storage, errors, auth, telemetry."""
