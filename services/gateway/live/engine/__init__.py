"""The live engine: what turns a presenter's audio into ordered events, with no HTTP in it.

``live_session`` wires one connection: audio -> ``transcriber`` (VAD ``segmenter``, partial
and final STT jobs) -> ``turns`` (translation, the dialog's reply, speech) -> events to the
socket and to the session's stream in ``store``; ``fanout`` reads that stream for every
listener of a gateway; ``access`` says who may read a session; ``protocol`` is the socket's
message schema.
"""
