"""A Wyoming protocol server (Home Assistant, Rhasspy) in front of the STT and TTS workers.

The event framing is the ``wyoming`` package's; this package only maps its events onto the
gateway core, so a Wyoming client uses the same streams as every other client.
"""

import warnings

# wyoming.audio imports the stdlib ``audioop`` (deprecated in 3.11, gone in 3.13; the package
# falls back to its own copy there). Import it once here, quietly, so warnings-as-errors
# runs and deployments do not trip over a dependency's import-time notice.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import wyoming.audio  # noqa: F401
