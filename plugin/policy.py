"""`kubectl longhorn-bi policy`: the rule set as ValidatingAdmissionPolicies."""

from __future__ import annotations

import sys

import click

from longhorn_bi.engine.names import object_name_problem
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.plugin.options import emit_json, longhorn_version_option, namespace_option


@click.command()
@longhorn_version_option
@namespace_option
@click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
def policy(version: LonghornVersion, namespace: str, output: str) -> None:
    """Print ValidatingAdmissionPolicies and bindings (Kubernetes 1.30+) that enforce the
    object-only rules in the API server itself, without the webhook: errors are denied,
    warnings returned to the client. Rules that need cluster facts stay with the webhook
    (`rules -o json` tells which have a policy form). Apply with `kubectl apply -f -`."""
    from longhorn_bi.engine.policy import policy_documents

    problem = object_name_problem(namespace)
    if problem:
        raise click.BadParameter(f"the namespace {problem}", param_hint="-n/--namespace")
    documents = policy_documents(version, namespace)
    if output == "json":
        emit_json({"apiVersion": "v1", "kind": "List", "items": documents})
        return
    import yaml

    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False))
