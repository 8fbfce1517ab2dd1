"""Change requests of protected groups: models, state, services, tasks (docs/change-requests.md)."""
