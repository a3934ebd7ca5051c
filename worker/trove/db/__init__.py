"""Database plumbing: the local PostgreSQL cluster and the migration runner."""
