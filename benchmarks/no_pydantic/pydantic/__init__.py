"""On PYTHONPATH, this hides an installed pydantic, as a plain `pip install g4f` lacks it.

Installing openai brings pydantic, and g4f then builds its chunks as pydantic models,
which is slower: the benchmark measures g4f as it runs without, and the OpenAI SDK apart.
"""

raise ImportError("pydantic is hidden to measure g4f as a plain install runs it")
