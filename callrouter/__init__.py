"""callrouter: call routing and IVR for French medical practices served by a tele-secretariat."""

__version__ = "0.1.0"
