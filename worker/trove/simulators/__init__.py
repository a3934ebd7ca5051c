"""Local stand-ins for the platforms' APIs (no internet here): real HTTP servers speaking each platform's
API shape, used by the tests and by `make run` when no platform credentials are configured."""
