"""Reading a live cluster: the only package that imports ``kubernetes`` (it imports ``renderer.core``
and nothing else of the project)."""
