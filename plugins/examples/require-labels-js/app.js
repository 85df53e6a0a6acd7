// Example inspection plugin in JavaScript, the twin of `plugins/examples/require-labels`:
// every Deployment must carry the labels listed in the configuration.
import { Finding, Severity, config, inspector, kube, log } from '../../sdk-js/portico.js';

export const inspect = inspector((cluster) => {
  const settings = config.get();
  const deployments = kube.list(kube.DEPLOYMENT, { namespace: settings.namespace });
  log.info(`checking ${deployments.length} deployments in ${cluster.name}`);

  return deployments.map((deployment) => {
    const labels = deployment.metadata.labels || {};
    const missing = settings.labels.filter((key) => !(key in labels));
    const finding = missing.length
      ? Finding.fail('required-labels', Severity.LOW, `missing labels: [${missing.map((k) => JSON.stringify(k)).join(', ')}]`)
          .extra({ missing })
      : Finding.pass('required-labels', 'all required labels are present');
    return finding.on(deployment);
  });
});
