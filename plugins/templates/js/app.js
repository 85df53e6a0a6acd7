// {{name}}: every Deployment must carry the labels the configuration lists.
import { Finding, Severity, config, inspector, kube, log } from '{{portico}}/plugins/sdk-js/portico.js';

export const inspect = inspector((cluster) => {
  const settings = config.get();
  const deployments = kube.list(kube.DEPLOYMENT);
  log.info(`checking ${deployments.length} deployments in ${cluster.name}`);
  return deployments.map((deployment) => {
    const labels = deployment.metadata.labels || {};
    const missing = settings.labels.filter((key) => !(key in labels));
    const finding = missing.length
      ? Finding.fail('required-labels', Severity.LOW, `missing labels: ${missing.join(', ')}`)
          .extra({ missing })
      : Finding.pass('required-labels', 'all required labels are present');
    return finding.on(deployment);
  });
});
