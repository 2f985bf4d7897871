"""The schema gate (renderer.schemas) and the CRD import (renderer.crdschemas)."""

from __future__ import annotations

import copy
import datetime
import http.server
import json
import pickle
import socket
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import yaml

from renderer.gates.crdschemas import CrdImportError, import_crds, load_crds
from renderer.core.errors import OutsideSystemError, RenderError
from renderer.gates.schemas import (
    SchemaSetupError,
    SchemaStore,
    SchemaViolation,
    UnsupportedKubernetesVersion,
    locations_from_env,
    supported_kubernetes_versions,
)

from tests.support.schema_samples import BROKEN, KUBERNETES_VERSION, broken, bundle, kinds, sample  # noqa: E402

SHARED_SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas"
EXAMPLES = sorted((SHARED_SCHEMAS / "examples").glob("*.yaml"))

# The shared crds/ folder is made from these upstream files (the same selection as
# shared/schemas/convert_crds.py's DEFAULT_INPUTS); None = every served version.
UPSTREAM_INPUTS = [
    ("external-secrets.io/external-secrets.io_externalsecrets.yaml", None),
    ("external-secrets.io/external-secrets.io_secretstores.yaml", None),
    ("external-secrets.io/external-secrets.io_clustersecretstores.yaml", None),
    ("kafka.strimzi.io/043-Crd-kafkatopic.yaml", None),
    ("kafka.strimzi.io/044-Crd-kafkauser.yaml", None),
    ("kafka.strimzi.io/strimzi-0.51.0/043-Crd-kafkatopic.yaml", ["v1beta2"]),
    ("kafka.strimzi.io/strimzi-0.51.0/044-Crd-kafkauser.yaml", ["v1beta2"]),
    ("kyverno.io/kyverno.io_policies.yaml", None),
    ("kyverno.io/kyverno.io_clusterpolicies.yaml", None),
    ("argoproj.io/application-crd.yaml", None),
    ("argoproj.io/appproject-crd.yaml", None),
    ("argoproj.io/applicationset-crd.yaml", None),
    ("monitoring.coreos.com/monitoring.coreos.com_prometheusrules.yaml", None),
    ("monitoring.coreos.com/monitoring.coreos.com_servicemonitors.yaml", None),
    ("monitoring.coreos.com/monitoring.coreos.com_podmonitors.yaml", None),
    ("opentelemetry.io/opentelemetry.io_instrumentations.yaml", None),
    ("opentelemetry.io/opentelemetry.io_opentelemetrycollectors.yaml", None),
] + [
    (f"{group}/{group}_{plural}.yaml", None)
    for group in ("postgresql.sql.crossplane.io", "postgresql.sql.m.crossplane.io")
    for plural in ("roles", "grants", "databases", "schemas", "defaultprivileges")
] + [
    ("db.movetokube.com/db.movetokube.com_postgres.yaml", None),
    ("db.movetokube.com/db.movetokube.com_postgresusers.yaml", None),
]


@pytest.fixture(scope="session")
def schema_locations() -> list[str]:
    """RENDER_SCHEMA_LOCATION, or the shared CRD schemas beside the repository."""
    return locations_from_env() or [str(SHARED_SCHEMAS / "crds")]


@pytest.fixture(scope="session")
def crds_dir(schema_locations) -> Path:
    """The local folder among the schema locations (the HTTP tests serve it)."""
    folders = [Path(loc) for loc in schema_locations if Path(loc).is_dir()]
    assert folders, f"no local schema folder in {schema_locations}"
    return folders[0]


@pytest.fixture(scope="session")
def store(schema_locations) -> SchemaStore:
    return SchemaStore(KUBERNETES_VERSION, schema_locations)


def _example_params():
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            yield pytest.param(doc, id=f"{doc['apiVersion']}-{doc['kind']}")


EXAMPLE_DOCS = list(_example_params())


# --------------------------------------------------------------------------- valid objects
@pytest.mark.parametrize("obj", EXAMPLE_DOCS)
def test_every_shared_example_is_valid(store, obj):
    assert store.validate(obj) == []


@pytest.mark.parametrize("obj", [pytest.param(o, id=k) for o, k in zip(bundle(), kinds())])
def test_every_object_of_a_typical_bundle_is_valid(store, obj):
    assert store.validate(obj) == []


def test_the_shared_examples_cover_every_shared_schema(crds_dir):
    covered = {f"{d.values[0]['apiVersion'].split('/')[0]}/{d.values[0]['kind'].lower()}_"
               f"{d.values[0]['apiVersion'].split('/')[1]}.json" for d in EXAMPLE_DOCS}
    present = {p.relative_to(crds_dir).as_posix() for p in crds_dir.rglob("*.json")}
    assert covered == present


# --------------------------------------------------------------------------- invalid objects
@pytest.mark.parametrize("case_id, expected_path", [pytest.param(c[0], c[3], id=c[0]) for c in BROKEN])
def test_a_broken_object_is_reported_at_the_broken_field(store, case_id, expected_path):
    violations = store.validate(broken(case_id))
    assert [v.path for v in violations] == [expected_path]


@pytest.mark.parametrize("obj, expected", [
    pytest.param({**sample("ConfigMap"), "spex": {}}, [SchemaViolation("spex", "unknown field")],
                 id="unknown-field-at-the-root"),
    pytest.param(broken("deployment-unknown-container-security-field"),
                 [SchemaViolation("spec.template.spec.containers[0].securityContext.runAsNonRot", "unknown field")],
                 id="nested-unknown-field"),
    pytest.param(broken("deployment-replicas-is-a-string"),
                 [SchemaViolation("spec.replicas", 'expected integer or null, got string "2"')],
                 id="wrong-type"),
    pytest.param(broken("kafkauser-bad-authentication-type"),
                 [SchemaViolation("spec.authentication.type",
                                  'must be one of ["tls", "tls-external", "scram-sha-512"], got string "scram"')],
                 id="bad-enum"),
    pytest.param(broken("limitrange-item-without-type"),
                 [SchemaViolation("spec.limits[0].type", "required field is missing")],
                 id="missing-required-field"),
    pytest.param(broken("deployment-max-surge-is-a-boolean"),
                 [SchemaViolation("spec.strategy.rollingUpdate.maxSurge",
                                  "expected string or integer or null, got boolean true")],
                 id="int-or-string-gets-a-boolean"),
    pytest.param(broken("grant-lowercase-privilege"),
                 [SchemaViolation("spec.forProvider.privileges[0]",
                                  'must match pattern "^[A-Z]+( [A-Z]+)*$", got string "select"')],
                 id="pattern-mismatch"),
    pytest.param(broken("prometheusrule-bad-partial-response-strategy"),
                 [SchemaViolation("spec.groups[0].partial_response_strategy",
                                  'must match pattern "(?i)^(abort|warn)?$", got string "nah"')],
                 id="re2-style-case-insensitive-pattern-mismatch"),
    pytest.param(broken("deployment-bad-creation-timestamp"),
                 [SchemaViolation("metadata.creationTimestamp", 'must be a valid date-time, got string "yesterday"')],
                 id="bad-date-time"),
    pytest.param({**sample("Namespace"), "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": 3}}},
                 [SchemaViolation('metadata.labels["app.kubernetes.io/name"]', "expected string or null, got integer 3")],
                 id="label-value-is-a-number"),
    pytest.param({"kind": "ConfigMap", "metadata": {"name": "x"}},
                 [SchemaViolation("apiVersion", "required field is missing")], id="missing-apiVersion"),
    pytest.param({"apiVersion": "v1", "kind": 7}, [SchemaViolation("kind", "expected a non-empty string, got integer 7")],
                 id="kind-is-not-a-string"),
    pytest.param({"apiVersion": "../../etc/v1", "kind": "Passwd"},
                 [SchemaViolation("apiVersion", "not an apiVersion like v1 or apps/v1: '../../etc/v1'")],
                 id="apiVersion-that-is-not-one"),
    pytest.param(["not", "an", "object"], [SchemaViolation("", "a Kubernetes object must be a mapping, got array")],
                 id="not-a-mapping"),
])
def test_invalid_objects_are_reported_with_path_and_message(store, obj, expected):
    assert store.validate(obj) == expected


@pytest.mark.parametrize("api_version, kind", [
    pytest.param("kafka.strimzi.io/v1alpha9", "KafkaUser", id="crd-version-that-does-not-exist"),
    pytest.param("external-secrets.io/v1beta1", "ExternalSecret", id="crd-version-that-is-no-longer-served"),
    pytest.param("apps/v1beta1", "Deployment", id="built-in-version-removed-from-kubernetes"),
    pytest.param("apps.example.com/v1", "Deployment", id="crd-group-that-shadows-a-built-in-name"),
    pytest.param("example.com/v1", "Widget", id="unknown-kind"),
])
def test_an_object_without_a_schema_is_a_violation_unless_missing_schemas_are_ignored(
        schema_locations, api_version, kind):
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    (violation,) = SchemaStore(KUBERNETES_VERSION, schema_locations).validate(obj)
    assert violation.path == ""
    assert violation.message.startswith(f"no schema for kind {kind} in apiVersion {api_version}")
    assert "render schemas import" in violation.message
    assert SchemaStore(KUBERNETES_VERSION, schema_locations, ignore_missing=True).validate(obj) == []


def test_ignoring_missing_schemas_still_checks_the_kinds_that_have_one(schema_locations):
    lenient = SchemaStore(KUBERNETES_VERSION, schema_locations, ignore_missing=True)
    assert [v.path for v in lenient.validate(broken("kafkauser-bad-authentication-type"))] == \
        ["spec.authentication.type"]


def test_built_in_kinds_are_strict_down_to_the_container(store):
    deployment = sample("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {"cpu": "1"}
    assert [str(v) for v in store.validate(deployment)] == [
        "spec.template.spec.containers[0].imagePullPolicyy: unknown field",
        "spec.template.spec.containers[0].resources.limit: unknown field",
    ]


def test_every_violation_of_an_object_is_reported_in_path_order(store):
    deployment = sample("Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers.extend(copy.deepcopy(containers[0]) | {"name": f"c{i}"} for i in range(1, 12))
    containers[10]["securityContext"]["runAsNonRot"] = True
    containers[2]["securityContext"]["runAsNonRot"] = True
    deployment["spec"]["replicas"] = "2"
    deployment["metadata"]["lables"] = {}
    assert [v.path for v in store.validate(deployment)] == [
        "metadata.lables",
        "spec.replicas",
        "spec.template.spec.containers[2].securityContext.runAsNonRot",
        "spec.template.spec.containers[10].securityContext.runAsNonRot",
    ]


def test_a_value_that_is_not_json_is_a_violation_and_not_a_crash(store):
    namespace = sample("Namespace")
    namespace["metadata"]["annotations"]["released"] = datetime.date(2026, 1, 2)
    assert store.validate(namespace) == [
        SchemaViolation("metadata.annotations.released", "a date value is not JSON; quote it in the YAML")]


def test_a_valid_date_time_is_accepted(store):
    deployment = sample("Deployment")
    deployment["metadata"]["creationTimestamp"] = "2026-05-01T12:00:00Z"
    assert store.validate(deployment) == []


# --------------------------------------------------------------------------- fast path vs reference
AGREEMENT_TABLE = (
    [pytest.param(o, id=f"good-{k}") for o, k in zip(bundle(), kinds())]
    + [pytest.param(broken(c[0]), id=f"bad-{c[0]}") for c in BROKEN]
    + [pytest.param(o, id=f"bad-unknown-root-field-{k}") for o, k in
       zip([{**o, "extraField": 1} for o in bundle()], kinds())]
    + [pytest.param(o, id=f"bad-misspelled-metadata-{k}") for o, k in
       zip([{**o, "metadata": {**o["metadata"], "nmae": "x"}} for o in bundle()], kinds())]
    + [pytest.param(d.values[0], id=f"example-{d.id}") for d in EXAMPLE_DOCS]
)


@pytest.mark.parametrize("obj", AGREEMENT_TABLE)
def test_the_fast_path_and_the_jsonschema_reference_agree(store, obj):
    # same verdict, same paths, same messages
    assert store.validate(obj) == store.reference_validate(obj)


@pytest.mark.parametrize("obj, valid", [pytest.param(p.values[0], p.id.startswith(("good", "example")), id=p.id)
                                         for p in AGREEMENT_TABLE])
def test_each_agreement_case_is_valid_exactly_when_its_id_says_good_or_example(store, obj, valid):
    assert (store.validate(obj) == []) is valid


@pytest.mark.parametrize("obj", AGREEMENT_TABLE[:17] + AGREEMENT_TABLE[17:47])
def test_validation_never_changes_the_object(store, obj):
    before = copy.deepcopy(obj)
    store.validate(obj)
    store.reference_validate(obj)
    assert obj == before


FORMAT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                   **{f.replace("-", "_"): {"type": "string", "format": f}
                      for f in ("date-time", "duration", "email", "uri", "ipv4", "int32", "byte")}},
}


@pytest.mark.parametrize("field, value, valid", [
    pytest.param("date_time", "2024-02-29T23:59:60+01:00", True, id="date-time-leap-day-and-second"),
    pytest.param("date_time", "2026-05-01t12:00:00.5z", True, id="date-time-lowercase-t-and-z"),
    pytest.param("date_time", "2023-02-29T00:00:00Z", False, id="date-time-no-such-day"),
    pytest.param("date_time", "2026-05-01 12:00:00", False, id="date-time-without-zone"),
    pytest.param("duration", "P1DT12H", True, id="duration-iso-8601"),
    pytest.param("duration", "5m", False, id="duration-go-style"),
    pytest.param("duration", "P", False, id="duration-empty"),
    pytest.param("email", "not an email", True, id="email-not-asserted"),
    pytest.param("uri", "::", True, id="uri-not-asserted"),
    pytest.param("ipv4", "999.1.1.1", True, id="ipv4-not-asserted"),
    pytest.param("int32", "x", True, id="int32-not-asserted"),
    pytest.param("byte", "!!", True, id="byte-not-asserted"),
])
def test_only_date_time_and_duration_formats_are_asserted_and_both_engines_agree(tmp_path, field, value, valid):
    path = tmp_path / "example.com" / "formats_v1.json"
    path.parent.mkdir()
    path.write_text(json.dumps(FORMAT_SCHEMA))
    gate = SchemaStore(KUBERNETES_VERSION, [str(tmp_path)])
    obj = {"apiVersion": "example.com/v1", "kind": "Formats", field: value}
    assert (gate.validate(obj) == []) is valid
    assert gate.validate(obj) == gate.reference_validate(obj)


# --------------------------------------------------------------------------- versions and setup
@pytest.mark.parametrize("given", [
    pytest.param("1.33", id="minor"), pytest.param("1.33.0", id="patch-zero"),
    pytest.param("1.33.7", id="other-patch"), pytest.param("v1.33", id="leading-v"),
])
def test_a_kubernetes_version_is_read_as_its_minor_version(given):
    assert SchemaStore(given).kubernetes_version == "1.33"


@pytest.mark.parametrize("given", [
    pytest.param("1.99", id="too-new"), pytest.param("1.2", id="too-old"), pytest.param("latest", id="not-a-version"),
])
def test_an_unsupported_kubernetes_version_is_refused_with_the_supported_ones(given):
    with pytest.raises(UnsupportedKubernetesVersion) as caught:
        SchemaStore(given)
    assert isinstance(caught.value, RenderError)
    assert given in str(caught.value)
    assert "1.33" in caught.value.hint


def test_the_supported_versions_are_those_that_kubernetes_validate_ships():
    versions = supported_kubernetes_versions()
    assert "1.33" in versions and "1.25" in versions
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))))


def test_locations_are_read_from_the_environment_comma_separated():
    assert locations_from_env({"RENDER_SCHEMA_LOCATION": " /a , https://x/{{.Group}}.json,,/b "}) == \
        ["/a", "https://x/{{.Group}}.json", "/b"]
    assert locations_from_env({}) == []


def test_a_location_template_with_kubeconform_placeholders_works(crds_dir):
    template = str(crds_dir) + "/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
    templated = SchemaStore(KUBERNETES_VERSION, ["default", template])
    assert templated.validate(sample("KafkaUser")) == []
    assert [v.path for v in templated.validate(broken("kafkauser-bad-acl-operation"))] == \
        ["spec.authorization.acls[0].operations[0]"]
    assert templated.schema_source("kafka.strimzi.io/v1", "KafkaUser") == \
        str(crds_dir / "kafka.strimzi.io" / "kafkauser_v1.json")


def test_the_built_in_schemas_come_before_the_locations(store):
    assert store.schema_source("apps/v1", "Deployment").endswith("v1.33.0-local-strict/deployment-apps-v1.json")
    assert store.schema_source("autoscaling/v2", "HorizontalPodAutoscaler").endswith(
        "horizontalpodautoscaler-autoscaling-v2.json")


@pytest.mark.parametrize("location, words", [
    pytest.param("/nonexistent/schemas", "is not a folder", id="folder-that-does-not-exist"),
    pytest.param("/x/{{.Group}}/{{.Kind}}.json", "unknown placeholder(s) Kind", id="unknown-placeholder"),
])
def test_a_bad_schema_location_is_refused_when_the_store_is_made(location, words):
    with pytest.raises(SchemaSetupError) as caught:
        SchemaStore(KUBERNETES_VERSION, [location])
    assert words in str(caught.value)
    assert caught.value.hint


@pytest.mark.parametrize("content, words", [
    pytest.param("{not json", "cannot read JSON schema", id="not-json"),
    pytest.param('{"type": 5}', "not a usable JSON schema", id="not-a-schema"),
])
def test_a_broken_schema_file_is_named_in_the_error(tmp_path, content, words):
    path = tmp_path / "example.com" / "widget_v1.json"
    path.parent.mkdir()
    path.write_text(content)
    gate = SchemaStore(KUBERNETES_VERSION, [str(tmp_path)])
    with pytest.raises(SchemaSetupError) as caught:
        gate.validate({"apiVersion": "example.com/v1", "kind": "Widget"})
    assert str(path) in str(caught.value) and words in str(caught.value)


def test_a_store_pickles_as_its_settings_and_validates_in_a_fresh_worker_process(schema_locations):
    gate = SchemaStore(KUBERNETES_VERSION, schema_locations, ignore_missing=False)
    gate.validate(sample("Deployment"))  # compiled here; must not travel
    blob = pickle.dumps(gate)
    assert len(blob) < 500
    copy_ = pickle.loads(blob)
    assert (copy_.kubernetes_version, copy_.locations, copy_.ignore_missing) == \
        (gate.kubernetes_version, gate.locations, gate.ignore_missing)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(gate.validate, [sample("Deployment"), broken("kafkauser-bad-acl-operation")]))
    assert results == [[], gate.validate(broken("kafkauser-bad-acl-operation"))]
    assert results[1] != []


# --------------------------------------------------------------------------- schemas over HTTP
class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).requests.append(self.path)
        if self.path.startswith("/broken/"):
            self.send_error(500, "boom")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture()
def schema_server(crds_dir):
    handler = type("Handler", (_CountingHandler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **kw: handler(*a, directory=str(crds_dir), **kw))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def test_schemas_are_fetched_from_an_http_url_template_once_per_process(schema_server):
    base, requests = schema_server
    template = base + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
    first = SchemaStore(KUBERNETES_VERSION, [template])
    assert requests == []  # making a store fetches nothing
    assert first.validate(sample("KafkaUser")) == []
    assert [v.path for v in first.validate(broken("kafkauser-bad-authentication-type"))] == ["spec.authentication.type"]
    assert SchemaStore(KUBERNETES_VERSION, [template]).validate(sample("KafkaUser")) == []
    assert requests == ["/kafka.strimzi.io/kafkauser_v1.json"]


def test_an_http_base_url_means_the_folder_layout_and_404_means_no_schema(schema_server):
    base, requests = schema_server
    gate = SchemaStore(KUBERNETES_VERSION, [base + "/"])
    assert gate.validate(sample("Grant")) == []
    (missing,) = gate.validate({"apiVersion": "example.com/v1", "kind": "Widget"})
    assert missing.message.startswith("no schema for kind Widget")
    assert "/example.com/widget_v1.json" in requests


def test_a_failing_schema_server_is_an_outside_system_error(schema_server):
    base, _ = schema_server
    gate = SchemaStore(KUBERNETES_VERSION, [base + "/broken/{{.Group}}/{{.ResourceKind}}.json"])
    with pytest.raises(OutsideSystemError) as caught:
        gate.validate(sample("KafkaUser"))
    assert "HTTP 500" in str(caught.value)


def test_an_unreachable_schema_server_is_an_outside_system_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gate = SchemaStore(KUBERNETES_VERSION, [f"http://127.0.0.1:{port}/{{{{.Group}}}}/{{{{.ResourceKind}}}}.json"])
    with pytest.raises(OutsideSystemError) as caught:
        gate.validate(sample("KafkaUser"))
    assert f"127.0.0.1:{port}" in str(caught.value)


# --------------------------------------------------------------------------- CRD import
def test_importing_the_upstream_crds_gives_exactly_the_shared_schemas(tmp_path, crds_dir):
    written = []
    for rel, versions in UPSTREAM_INPUTS:
        written += import_crds([SHARED_SCHEMAS / "upstream" / rel], tmp_path, versions)
    produced = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")}
    expected = {p.relative_to(crds_dir).as_posix() for p in crds_dir.rglob("*.json")}
    assert produced == expected
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(expected)
    different = [rel for rel in sorted(expected)
                 if json.loads((tmp_path / rel).read_text()) != json.loads((crds_dir / rel).read_text())]
    assert different == []


def test_a_kubectl_list_of_crds_is_imported_like_the_separate_files(tmp_path, crds_dir):
    upstream = SHARED_SCHEMAS / "upstream" / "kafka.strimzi.io"
    items = load_crds(upstream / "043-Crd-kafkatopic.yaml") + load_crds(upstream / "044-Crd-kafkauser.yaml")
    listing = tmp_path / "crds.yaml"
    listing.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    written = import_crds([listing], tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == \
        ["kafka.strimzi.io/kafkatopic_v1.json", "kafka.strimzi.io/kafkauser_v1.json"]
    for path in written:
        rel = path.relative_to(tmp_path / "out")
        assert json.loads(path.read_text()) == json.loads((crds_dir / rel).read_text())


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: []
              properties:
                mode: {type: string, enum: [on, off]}
                "yes": {type: boolean}
                port: {x-kubernetes-int-or-string: true, anyOf: [{type: integer}, {type: string}]}
                note: {type: string, nullable: true}
                level: {type: string, pattern: "^(?i)(low|high)$"}
                free: {type: object, x-kubernetes-preserve-unknown-fields: true, properties: {a: {type: string}}}
                either:
                  type: object
                  properties: {a: {type: string}}
                  anyOf: [{properties: {a: {type: string}}, required: [a]}]
                sep: {type: string, default: =}
    - name: v0
      served: false
      storage: false
      schema:
        openAPIV3Schema: {type: object}
"""


def test_the_conversion_rules_hold_on_a_small_crd(tmp_path):
    crd = tmp_path / "widget.yaml"
    crd.write_text(WIDGET_CRD)
    (path,) = import_crds([crd], tmp_path / "out")
    assert path == tmp_path / "out" / "example.com" / "widget_v1.json"  # v0 is not served
    schema = json.loads(path.read_text())
    assert schema["x-kubernetes-group-version-kind"] == [{"group": "example.com", "kind": "Widget", "version": "v1"}]
    assert schema["additionalProperties"] is False and schema["required"] == ["apiVersion", "kind"]
    assert schema["properties"]["apiVersion"]["enum"] == ["example.com/v1"]
    assert schema["properties"]["kind"]["enum"] == ["Widget"]
    assert schema["properties"]["metadata"]["additionalProperties"] is False
    spec = schema["properties"]["spec"]
    assert "required" not in spec and spec["additionalProperties"] is False
    props = spec["properties"]
    assert props["mode"]["enum"] == ["on", "off"]  # YAML 1.2: still strings
    assert "yes" in props
    assert props["port"] == {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    assert props["note"]["type"] == ["string", "null"]
    assert props["level"]["pattern"] == "(?i)^(low|high)$"
    assert "additionalProperties" not in props["free"]
    assert props["either"]["additionalProperties"] is False
    assert "additionalProperties" not in props["either"]["anyOf"][0]
    assert props["sep"]["default"] == "="


def test_an_imported_schema_is_used_by_the_gate(tmp_path):
    crd = tmp_path / "widget.yaml"
    crd.write_text(WIDGET_CRD)
    import_crds([crd], tmp_path / "out")
    gate = SchemaStore(KUBERNETES_VERSION, [str(tmp_path / "out")])
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"mode": "on", "port": 8080, "note": None, "level": "HIGH", "free": {"any": 1}}}
    assert gate.validate(widget) == []
    widget["spec"]["level"] = "medium"
    widget["spec"]["colour"] = "red"
    assert [v.path for v in gate.validate(widget)] == ["spec.colour", "spec.level"]


@pytest.mark.parametrize("content, versions, words", [
    pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", None,
                 "no CustomResourceDefinition", id="no-crd-in-the-file"),
    pytest.param("kind: [unclosed\n", None, "not valid YAML", id="not-yaml"),
    pytest.param(WIDGET_CRD, ["v9"], "no served CRD version", id="version-filter-matches-nothing"),
])
def test_a_file_that_cannot_be_imported_is_refused_with_a_clear_error(tmp_path, content, versions, words):
    crd = tmp_path / "input.yaml"
    crd.write_text(content)
    with pytest.raises(CrdImportError) as caught:
        import_crds([crd], tmp_path / "out", versions)
    assert words in str(caught.value)
    assert caught.value.hint
