"""The service's health check."""

# Answers when the database does.
PING = "select 1"
