"""The plugin bundle renderer: environments repo in, namespace bundles out.

Flow: cli -> pipeline -> load -> plan -> verify -> render -> validate -> write -> (gitops).
"""

__version__ = "0.1.0"
