"""On PYTHONPATH, this hides curl_cffi from importlib.util.find_spec as well, which finds the
package beside it without running it. Where another sitecustomize comes first on the path,
that package still makes the import fail, so g4f still runs over aiohttp."""

import sys

sys.modules["curl_cffi"] = None  # type: ignore[assignment]  # as if not installed: no spec, no import
