"""Synthesized demo music, so demos and tests need no real recordings."""

from consentune.demo.synth import STYLES, SongSpec, encode, synthesize

__all__ = ["STYLES", "SongSpec", "encode", "synthesize"]
