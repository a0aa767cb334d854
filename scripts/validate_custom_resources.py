"""Check custom resources offline against their operators' CustomResourceDefinitions.

    python scripts/validate_custom_resources.py RENDERED.yaml [--crds DIR]
    (kubectl kustomize k8s/overlays/production > RENDERED.yaml; DIR defaults to k8s/crds)

A CRD's schema is JSON Schema with Kubernetes extensions. This turns it into plain JSON
Schema with one strictness the API server lacks: a field the schema does not declare is an
error (the server would drop it silently, so a misspelt field is a setting that never
applies). Prints one line per custom resource and exits 1 if any is invalid or has no CRD.
Core kinds (Deployment, Service, ...) are left to kubernetes-validate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DEFAULT_CRDS = Path(__file__).resolve().parents[1] / "k8s/crds"
Schema = dict[str, Any]
KindKey = tuple[str, str]  # (apiVersion, kind)


def strict(schema: Schema) -> Schema:
    """The CRD schema node as JSON Schema in which undeclared fields are errors."""
    out = {key: value for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema:
        out["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            out[key] = strict(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [strict(sub) for sub in schema[key]]
    return out


def load_schemas(folder: Path) -> dict[KindKey, Schema]:
    """(apiVersion, kind) -> strict schema, for every version of every CRD in the folder."""
    schemas = {}
    for path in sorted(folder.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                key = (f"{group}/{version['name']}", kind)
                schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def is_custom(doc: dict[str, Any]) -> bool:
    """A kind outside the Kubernetes API groups (theirs are unqualified or end in k8s.io)."""
    group = doc["apiVersion"].rpartition("/")[0]
    return bool(group) and "." in group and not group.endswith("k8s.io")


def problems(doc: dict[str, Any], schemas: dict[KindKey, Schema]) -> list[str]:
    """What is wrong with one custom resource: each error as `path: message`."""
    schema = schemas.get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        return [f"no CRD for {doc['kind']} {doc['apiVersion']}"]
    errors = jsonschema.Draft7Validator(schema).iter_errors(doc)
    return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in errors]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered", type=Path)
    parser.add_argument("--crds", type=Path, default=DEFAULT_CRDS)
    args = parser.parse_args()
    schemas = load_schemas(args.crds)
    docs = [d for d in yaml.safe_load_all(args.rendered.read_text()) if d and is_custom(d)]
    invalid = 0
    for doc in docs:
        found = problems(doc, schemas)
        invalid += bool(found)
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        sys.stdout.write(f"FAIL {name}: {'; '.join(found)}\n" if found else f"ok   {name}\n")
    sys.stdout.write(f"{len(docs)} custom resources checked, {invalid} invalid\n")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
