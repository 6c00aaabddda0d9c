"""External adapter: serves job streams by calling registered HTTP backends."""
