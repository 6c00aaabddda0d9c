"""Machine-translation worker: Bergamot or CTranslate2 behind the consumer-group loop."""
