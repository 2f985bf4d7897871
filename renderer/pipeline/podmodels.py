"""Models of the pod-level input fields (issue 11, items 2-4), shared by plugin.yaml and
platform.yaml: who the containers run as, how a pod shuts down, and the labels the platform's
Prometheus selects rules by. ``models`` uses them; the rules live here so that every message
names the field (the loader adds file and line)."""

from __future__ import annotations

import re
from typing import Annotated, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MIN_UID = 10000  # checkov CKV_K8S_40: a UID/GID of at least 10000 cannot clash with the node's users
MAX_UID = 2147483647  # the largest UID Linux user namespaces map (2^31 - 1)
LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                          r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# label prefixes the renderer writes itself: a platform setting must not change what they mean
RESERVED_LABEL_PREFIXES = ("app.kubernetes.io/", "plugins.adapstory.io/")


def _high_id(value: int) -> int:
    if value < MIN_UID:
        raise ValueError(f"{value} is below {MIN_UID}: use a UID/GID of at least {MIN_UID}, so that the container "
                         "cannot share an identity with a user of the node (checkov CKV_K8S_40)")
    if value > MAX_UID:
        raise ValueError(f"{value} is above {MAX_UID}")
    return value


def _label_key(value: str) -> str:
    if len(value) > 317 or not LABEL_KEY_RE.match(value) or len(value.rsplit("/", 1)[-1]) > 63:
        raise ValueError(f"{value!r} is not a Kubernetes label key")
    if value.startswith(RESERVED_LABEL_PREFIXES):
        raise ValueError(f"{value!r}: labels under {' and '.join(RESERVED_LABEL_PREFIXES)} are the renderer's own")
    return value


def _label_value(value: str) -> str:
    if not LABEL_VALUE_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes label value (at most 63 of [A-Za-z0-9_.-], "
                         "alphanumeric at both ends)")
    return value


HighId = Annotated[int, AfterValidator(_high_id)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RunAs(_Strict):
    """``securityContext``: the pod's user and group (``fsGroup`` is the group). A manifest
    that gives only ``runAsUser`` runs with the group of the same number."""

    runAsUser: HighId
    runAsGroup: Optional[HighId] = None

    @property
    def group(self) -> int:
        return self.runAsUser if self.runAsGroup is None else self.runAsGroup


class Shutdown(_Strict):
    """``shutdown``: how long the pod keeps serving after it is told to stop (``preStopSeconds``,
    a ``lifecycle.preStop.sleep``: endpoints and load balancers stop sending to it meanwhile), and
    the whole grace period, which must leave the process time to finish after the delay. Both are
    given together, so the check between them never spans two files."""

    preStopSeconds: Annotated[int, Field(ge=1, le=300)]
    terminationGracePeriodSeconds: Annotated[int, Field(ge=2, le=3600)]

    @model_validator(mode="after")
    def _grace_exceeds_delay(self):
        if self.terminationGracePeriodSeconds <= self.preStopSeconds:
            raise ValueError(f"terminationGracePeriodSeconds ({self.terminationGracePeriodSeconds}) must exceed "
                             f"preStopSeconds ({self.preStopSeconds}): the grace period includes the preStop delay, "
                             "and the process needs time to finish after it")
        return self


DEFAULT_RUN_AS = RunAs(runAsUser=10001, runAsGroup=10001)
DEFAULT_SHUTDOWN = Shutdown(preStopSeconds=5, terminationGracePeriodSeconds=30)
