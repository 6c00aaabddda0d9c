"""PyParrot's processes: one folder per worker stage, plus the gateway."""
