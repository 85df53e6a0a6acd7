// `plugins/examples/connect-logger` in JavaScript: a lifecycle hook using kube, log, config and
// http through the SDK (built and run by tests/e2e/tests/plugins_languages.rs).
import {
  ErrorKind, PluginError, config, http, kube, lifecycleHook, log,
} from '../../../../../plugins/sdk-js/portico.js';

function notify(cluster, event, nodes) {
  const url = config.get()['webhook-url'];
  if (url === undefined) {
    return;
  }
  const body = JSON.stringify({ event, cluster: cluster.id, nodes });
  const response = http.post(url, body).header('content-type', 'application/json').send();
  if (!response.isSuccess()) {
    throw new PluginError(ErrorKind.UNAVAILABLE, `webhook answered HTTP ${response.status}`);
  }
}

export const { onConnect, onDisconnect } = lifecycleHook(
  (cluster) => {
    const nodes = kube.list(kube.NODE);
    log.info(`connected to ${cluster.id} (${nodes.length} nodes)`);
    notify(cluster, 'connected', nodes.length);
  },
  (cluster) => {
    log.info(`disconnected from ${cluster.id}`);
    notify(cluster, 'disconnected', 0);
  },
);
