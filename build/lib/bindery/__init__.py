"""Bindery: catalog vendor reels, bind them to accounts, provision device certificates."""

__version__ = "0.1.0"
