"""Shared plumbing for Tessera services: settings, database, bus, storage, errors, auth, telemetry."""
