"""Consentune: AI services for audio platforms with enforceable, provable consent."""

__version__ = "0.1.0"
__all__ = ["__version__"]
