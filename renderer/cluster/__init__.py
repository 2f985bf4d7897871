"""Reading a Kubernetes cluster (Argo CD Applications): below ``flows``, beside ``pipeline`` and ``gitops``."""
