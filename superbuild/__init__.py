"""superbuild: build a product made of many git submodules.

The library is the API; ``superbuild.cli`` is a thin shell over it.  Modules import
only what they need so that the hot path (``superbuild changed``) stays fast.
"""

__version__ = "0.1.0"
