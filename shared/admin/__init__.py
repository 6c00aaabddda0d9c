"""What the command line and the gateway both do to a running stack's Redis: the API-key
store (and the marker that keys once existed), and the job streams' backlog figures.

The CLI reaches a stack through this package, never through the gateway's internals.
"""
