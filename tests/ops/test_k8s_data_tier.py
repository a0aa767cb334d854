"""The data tier of each overlay: one pod per store in dev, operators in production.

The production overlay's custom resources are validated offline against the operators'
CRDs (k8s/crds) by scripts/validate_custom_resources.py, and, where the operators' own
reference validator is at hand (REFERENCE_CRD_VALIDATOR, or ../shared/crds/validate_cr.py
beside the checkout), by that one too: both must agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from servicekit.config import ServiceSettings
from servicekit.testing.helpers import PG_HOST, PG_PORT, TEST_DATABASE

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = "k8s/overlays/production"
SERVICE_ROLES = {
    "auth_service",
    "movie_service",
    "booking_service",
    "payment_service",
    "notification_service",
}


def reference_validator() -> Path | None:
    candidates = [os.environ.get("REFERENCE_CRD_VALIDATOR", "")]
    candidates += [str(up / "shared/crds/validate_cr.py") for up in (ROOT.parent, ROOT.parent.parent)]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def objects(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_dev_runs_one_pod_per_store(render: Any) -> None:
    docs = render("k8s/overlays/dev")
    stores = objects(docs, "StatefulSet")
    assert {name: sts["spec"]["replicas"] for name, sts in stores.items()} == {
        "postgres": 1,
        "redis": 1,
        "rabbitmq": 1,
    }
    assert all(sts["spec"]["volumeClaimTemplates"] for sts in stores.values())
    assert not objects(docs, "Cluster") and not objects(docs, "RabbitmqCluster")


def test_production_runs_every_store_on_three_nodes(render: Any) -> None:
    docs = render(PRODUCTION)
    assert objects(docs, "Cluster")["postgres"]["spec"]["instances"] == 3
    assert objects(docs, "RabbitmqCluster")["rabbitmq"]["spec"]["replicas"] == 3
    # No single-pod StatefulSet is left: Redis is the only one, with its sentinels.
    redis = objects(docs, "StatefulSet")
    assert list(redis) == ["redis"] and redis["redis"]["spec"]["replicas"] == 3
    pod = redis["redis"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["redis", "sentinel"]
    assert redis["redis"]["spec"]["volumeClaimTemplates"]
    # One member per node, and a drain takes one at a time (CloudNativePG keeps its own PDBs).
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    assert objects(docs, "Cluster")["postgres"]["spec"]["affinity"]["podAntiAffinityType"] == "required"
    budgets = objects(docs, "PodDisruptionBudget")
    assert budgets["redis"]["spec"]["maxUnavailable"] == budgets["rabbitmq"]["spec"]["maxUnavailable"] == 1


def test_postgres_commits_synchronously_and_backs_up(render: Any) -> None:
    docs = render(PRODUCTION)
    spec = objects(docs, "Cluster")["postgres"]["spec"]
    assert spec["postgresql"]["synchronous"] == {
        "method": "any",
        "number": 1,
        "dataDurability": "required",
        "failoverQuorum": True,
    }
    store = spec["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    assert {ref["name"] for ref in store["s3Credentials"].values()} == {"postgres-backup-s3"}
    # The backup credentials are made outside git, like every production Secret.
    assert "postgres-backup-s3" not in objects(docs, "Secret")


def test_postgres_bootstrap_makes_every_service_role(render: Any) -> None:
    docs = render(PRODUCTION)
    spec = objects(docs, "Cluster")["postgres"]["spec"]
    roles = {role["name"]: role for role in spec["managed"]["roles"]}
    assert set(roles) == SERVICE_ROLES
    assert all(role["login"] and role["passwordSecret"]["name"] for role in roles.values())
    initdb = spec["bootstrap"]["initdb"]
    assert initdb["database"] == "moviebooking"
    for ref in initdb["postInitApplicationSQLRefs"]["configMapRefs"]:
        assert ref["key"] in objects(docs, "ConfigMap")[ref["name"]]["data"], ref


def test_services_find_redis_through_the_sentinels(render: Any) -> None:
    docs = render(PRODUCTION)
    common = objects(docs, "ConfigMap")["movie-booking-common"]["data"]
    redis = objects(docs, "StatefulSet")["redis"]["spec"]
    sentinel_config = objects(docs, "ConfigMap")["redis-sentinel"]["data"]
    pods = [f"redis-{i}.{redis['serviceName']}" for i in range(redis["replicas"])]
    assert common["REDIS_SENTINELS"] == ",".join(f"{p}:{sentinel_config['SENTINEL_PORT']}" for p in pods)
    assert sentinel_config["PEERS"].split() == pods
    assert common["REDIS_SENTINEL_MASTER"] == sentinel_config["MASTER_NAME"]
    ServiceSettings(redis_sentinels=common["REDIS_SENTINELS"])  # the settings accept the list


def test_custom_resources_validate_against_the_crds(
    render: Any, crd_validator: ModuleType, crds_dir: Path
) -> None:
    schemas = crd_validator.load_schemas(crds_dir)
    custom = [d for d in render(PRODUCTION) if crd_validator.is_custom(d)]
    assert sorted(d["kind"] for d in custom) == ["Cluster", "RabbitmqCluster"]
    assert {d["kind"]: crd_validator.problems(d, schemas) for d in custom} == {
        "Cluster": [],
        "RabbitmqCluster": [],
    }


def test_the_restore_patch_recovers_from_the_archive_the_cluster_writes(
    render: Any, kustomize_build: Any, tmp_path: Path, crd_validator: ModuleType, crds_dir: Path
) -> None:
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    kustomization = tmp_path / "k8s/overlays/production/kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "  - path: restore-from-backup.yaml\n")
    restored = objects(kustomize_build(tmp_path / "k8s/overlays/production"), "Cluster")["postgres"]
    assert crd_validator.problems(restored, crd_validator.load_schemas(crds_dir)) == []
    spec = restored["spec"]
    assert list(spec["bootstrap"]) == ["recovery"]
    (archive,) = [c for c in spec["externalClusters"] if c["name"] == spec["bootstrap"]["recovery"]["source"]]
    written = objects(render(PRODUCTION), "Cluster")["postgres"]["spec"]["backup"]["barmanObjectStore"]
    # It reads what the running cluster archives (serverName defaults to the cluster's name),
    # and archives anew elsewhere.
    assert archive["barmanObjectStore"]["destinationPath"] == written["destinationPath"]
    assert archive["barmanObjectStore"]["serverName"] == written.get("serverName", "postgres")
    assert spec["backup"]["barmanObjectStore"]["serverName"] != archive["barmanObjectStore"]["serverName"]


@pytest.fixture()
def broken_production(kustomize_build: Any, tmp_path: Path) -> Path:
    """The production overlay rendered from a copy with a misspelt field and a wrong type."""
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    data = tmp_path / "k8s/components/data-ha"
    cluster = data / "postgres-cluster.yaml"
    cluster.write_text(
        cluster.read_text().replace("  instances: 3\n", "  instances: 3\n  synchronousReplicas: 1\n")
    )
    rabbitmq = data / "rabbitmq-cluster.yaml"
    rabbitmq.write_text(rabbitmq.read_text().replace("  replicas: 3\n", "  replicas: three\n"))
    rendered = tmp_path / "broken.yaml"
    rendered.write_text(yaml.safe_dump_all(kustomize_build(tmp_path / "k8s/overlays/production")))
    return rendered


def run_validator(script: Path, rendered: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(script), str(rendered), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_wrong_field_in_a_custom_resource_is_rejected(broken_production: Path) -> None:
    result = run_validator(ROOT / "scripts/validate_custom_resources.py", broken_production)
    assert result.returncode == 1, result.stdout
    assert "FAIL Cluster/postgres: spec: Additional properties are not allowed ('synchronousReplicas'" in (
        result.stdout
    )
    assert "FAIL RabbitmqCluster/rabbitmq: spec/replicas: 'three' is not of type 'integer'" in result.stdout


@pytest.mark.skipif(reference_validator() is None, reason="the operators' reference validator is not here")
def test_the_reference_validator_agrees(render: Any, broken_production: Path, tmp_path: Path) -> None:
    reference = reference_validator()
    assert reference is not None
    assert (reference.parent / "postgresql.cnpg.io_clusters.yaml").read_bytes() == (
        ROOT / "k8s/crds/postgresql.cnpg.io_clusters.yaml"
    ).read_bytes()
    assert (reference.parent / "rabbitmq.com_rabbitmqclusters.yaml").read_bytes() == (
        ROOT / "k8s/crds/rabbitmq.com_rabbitmqclusters.yaml"
    ).read_bytes()
    rendered = tmp_path / "as-committed.yaml"
    rendered.write_text(yaml.safe_dump_all(render(PRODUCTION)))
    for manifest, returncode in ((rendered, 0), (broken_production, 1)):
        ours = run_validator(ROOT / "scripts/validate_custom_resources.py", manifest)
        theirs = run_validator(reference, manifest)
        assert (ours.returncode, theirs.returncode) == (returncode, returncode), (ours.stdout, theirs.stdout)
        assert ours.stdout.splitlines()[-1] == theirs.stdout.splitlines()[-1]


def test_postgres_init_script_is_the_one_in_database() -> None:
    copy = (ROOT / "k8s/components/data-single/01-roles-and-schemas.sh").read_text()
    assert copy == (ROOT / "database/init/01-roles-and-schemas.sh").read_text(), (
        "k8s/components/data-single/01-roles-and-schemas.sh must be a copy of database/init's"
    )


def psql(database: str, sql: str) -> str:
    command = ["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", "postgres", "-d", database]
    result = subprocess.run(
        [*command, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


LAYOUT = """
SELECT nspname || ' owned by ' || nspowner::regrole FROM pg_namespace
 WHERE nspowner::regrole::text LIKE '%\\_service' ORDER BY 1;
SELECT setrole::regrole || ' ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
 WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1;
SELECT rolname || ' may connect' FROM pg_roles
 WHERE NOT rolsuper AND has_database_privilege(oid, current_database(), 'CONNECT') ORDER BY 1;
"""


def test_the_operator_bootstrap_makes_the_layout_of_database_init() -> None:
    """roles-and-schemas.sql (CloudNativePG's bootstrap) on a fresh database gives the schemas,
    owners, search paths and CONNECT grants that database/init gave the test database."""
    scratch = f"{TEST_DATABASE}_bootstrap_{uuid.uuid4().hex[:6]}"
    psql("postgres", f'CREATE DATABASE "{scratch}"')
    try:
        sql = (ROOT / "k8s/components/data-ha/roles-and-schemas.sql").read_text()
        psql(scratch, sql)
        assert psql(scratch, LAYOUT) == psql(TEST_DATABASE, LAYOUT)
        assert "booking owned by booking_service" in psql(scratch, LAYOUT)
    finally:
        psql("postgres", f'DROP DATABASE IF EXISTS "{scratch}"')
