"""The typed contracts between services: the models of each service's internal API.

The service that serves an internal endpoint declares these models as its request and
response types, and the services that call it parse with the same models, so the two
sides cannot drift apart.
"""
