"""On PYTHONPATH, this hides an installed curl_cffi, as a plain `pip install g4f` lacks it.

g4f then streams over aiohttp, so one environment can test both HTTP backends.
"""

raise ImportError("curl_cffi is hidden to test g4f's aiohttp backend")
