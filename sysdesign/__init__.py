"""sysdesign: a hands-on system design course that runs in JupyterLab.

Every mini implementation the notebooks discuss lives in this package, one
subpackage per system, so that what a learner reads is what the tests test.

Notebooks start with the same setup cell::

    import sysdesign as sd

    sd.setup()
"""

from sysdesign.notebook import setup, show_source

__version__ = "0.1.0"
__all__ = ["setup", "show_source", "__version__"]
