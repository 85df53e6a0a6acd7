"""Example inspection plugin in Python, the twin of `plugins/examples/require-labels`: every
Deployment must carry the labels listed in the configuration."""

import json

from portico_plugin import Finding, Severity, config, export_inspector, kube, log


def inspect(cluster):
    settings = config.get()
    deployments = kube.list(kube.DEPLOYMENT, namespace=settings.get("namespace"))
    log.info(f"checking {len(deployments)} deployments in {cluster.name}")

    findings = []
    for deployment in deployments:
        labels = deployment["metadata"].get("labels") or {}
        missing = [key for key in settings["labels"] if key not in labels]
        if missing:
            finding = Finding.fail(
                "required-labels", Severity.LOW, f"missing labels: {json.dumps(missing)}"
            ).extra({"missing": missing})
        else:
            finding = Finding.pass_("required-labels", "all required labels are present")
        findings.append(finding.on(deployment))
    return findings


WitWorld = export_inspector(inspect)
