"""superbuild: build a product made of many git submodules.

The library is the API; ``superbuild.cli`` is a thin shell over it.  Modules import
only what they need so that the hot path (``superbuild changed``) stays fast.
"""

__version__ = "0.1.0"

#: The product's files in the superproject (the lean ``changed`` path reads these names
#: before it imports anything else).
MANIFESTS_DIR = "manifests"
SETTINGS_FILE = "superbuild.yaml"
