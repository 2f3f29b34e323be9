"""Built-in datasets (public path ``dfwidgets.datasets``): Fashion-MNIST and digits.

The code lives in :mod:`dfwidgets.data.datasets`; this module *is* that module
(``dfwidgets.datasets is dfwidgets.data.datasets``), so patching one patches both.
"""

from __future__ import annotations

import sys

from dfwidgets.data import datasets as _datasets

sys.modules[__name__] = _datasets
