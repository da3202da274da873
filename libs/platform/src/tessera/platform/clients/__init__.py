"""Typed HTTP clients of the services' internal APIs, over the models of
`tessera.platform.contracts`."""
