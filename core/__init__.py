"""What every app shares: API base classes, the error body, cache and broker helpers, health checks.

A leaf package: it imports no app of the project (checked by import-linter in the test command)."""
