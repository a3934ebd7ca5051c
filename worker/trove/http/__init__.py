"""`trove serve`: the HTTP service (health, OAuth connect, webhook ingress; the read API joins later)."""
