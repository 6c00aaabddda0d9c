"""What every PyParrot process shares: wire contract, stream names, settings, worker loop."""
