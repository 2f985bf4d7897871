"""The environment-wide part of a run, after every bundle passed its own gates.

Where it sits: ``pipeline``, called by ``build`` (and by ``flows.shards`` for a join) with every
bundle's isolation facts and Application: the isolation audit (``validate.EnvironmentAudit``),
the AppProject and the root Application, each through the schema gate.
"""

from __future__ import annotations

from typing import Optional

from renderer.core import layout
from renderer.core.yamlio import dump
from renderer.pipeline.plan import EnvironmentPlan
from renderer.pipeline.render import Renderer
from renderer.pipeline.audit import EnvironmentAudit
from renderer.pipeline.validate import BundleGates


def environment_files(renderer: Renderer, gates: BundleGates, env: EnvironmentPlan, facts: list,
                      applications: list, rendered: Optional[set] = None) -> tuple[list[str], dict]:
    """The environment-wide part of a run: the isolation audit over every bundle's facts, the
    AppProject (its destinations checked against the facts) and the Applications in ``<env>/argocd/``,
    the root Application in ``<env>/bootstrap/``. ``rendered``: the bundle paths of an ``--only``
    run (the AppProject check is left out; the other bundles' Applications are rendered from plans).
    Returns the violations and {folder: [(file name, bytes)]}."""
    kubernetes_version = env.platform.kubernetesVersion
    project = renderer.render_project(env)
    violations = gates.check_objects(layout.argocd_dir(env.name), [project], kubernetes_version)
    violations += EnvironmentAudit(env.name, facts, project if rendered is None else None,
                                   topic_prefix=env.platform.kafka.topicPrefix).violations()
    root = renderer.render_root(env)
    violations += gates.check_objects(layout.bootstrap_dir(env.name), [root], kubernetes_version)
    files = [(project[0], dump(project[1]))] + list(applications)
    if rendered is not None:  # keep the Applications of the bundles this run did not render
        files += _unrendered_applications(renderer, env, rendered)
    return violations, {layout.bootstrap_dir(env.name): [(root[0], dump(root[1]))],
                        layout.argocd_dir(env.name): sorted(files)}


def _unrendered_applications(renderer: Renderer, env: EnvironmentPlan, rendered: set) -> list:
    out = []
    for p in env.bundles:
        if p.path not in rendered:
            name, obj = renderer.render_application(p)
            out.append((name, dump(obj)))
    return out
