// Portico plugin SDK for JavaScript: typed helpers over the imports componentize-js binds
// from `wit/` (see README.md and types: `portico.d.ts`). The same surface as the Rust SDK
// (`plugins/sdk`): kube get/list/podLogs, findings with severity, config, log, http.
//
// Every host call throws a `PluginError` on failure; an export wrapped by `inspector` or
// `lifecycleHook` returns a thrown `PluginError` to the gateway as the call's error (any other
// exception becomes an `internal` error with its stack).

import * as hostKube from 'portico:plugin/kube@0.1.0';
import * as hostLog from 'portico:plugin/log@0.1.0';
import * as hostConfig from 'portico:plugin/config@0.1.0';
import * as hostHttp from 'portico:plugin/http@0.1.0';

/** How serious a failed check is (WIT `severity`). */
export const Severity = Object.freeze({
  INFO: 'info',
  LOW: 'low',
  MEDIUM: 'medium',
  HIGH: 'high',
  CRITICAL: 'critical',
});

/** Why a host call or an export failed (WIT `error-kind`). */
export const ErrorKind = Object.freeze({
  DENIED: 'denied',
  NOT_FOUND: 'not-found',
  TIMEOUT: 'timeout',
  TOO_LARGE: 'too-large',
  INVALID: 'invalid',
  UNAVAILABLE: 'unavailable',
  INTERNAL: 'internal',
});

/** A failed host call, or the error an export returns. */
export class PluginError extends Error {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.kind = kind;
    this.detail = message;
  }

  static invalid(message) {
    return new PluginError(ErrorKind.INVALID, message);
  }

  static internal(message) {
    return new PluginError(ErrorKind.INTERNAL, message);
  }

  /** The WIT `error` record; the bindings return a thrown object's `payload` as the `err`. */
  get payload() {
    return { kind: this.kind, message: this.detail };
  }
}

// Calls a host function; its `err` arrives thrown, with the WIT `error` as `payload`.
function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (e) {
    const error = e && e.payload !== undefined ? e.payload : e;
    if (error && typeof error.kind === 'string') {
      throw new PluginError(error.kind, error.message);
    }
    throw e;
  }
}

// Runs an export's body: every failure reaches the gateway as a WIT error, never as a trap
// (a trap would only say "unreachable").
function guard(run) {
  try {
    return run();
  } catch (e) {
    if (e instanceof PluginError) {
      throw e;
    }
    const detail = e && e.stack ? `${e}\n${e.stack}` : String(e);
    throw PluginError.internal(detail);
  }
}

function clusterOf(target) {
  return { id: target.id, name: target.name, labels: Object.fromEntries(target.labels) };
}

/** One result of one check on one object (or on the whole cluster). */
export class Finding {
  constructor(checkId, severity, passed, message) {
    this.checkId = checkId;
    this.severity = severity;
    this.passed = passed;
    this.message = message;
    this.targetRef = undefined;
    this.extraJson = 'null';
  }

  /** A failed check. */
  static fail(checkId, severity, message) {
    return new Finding(checkId, severity, false, message);
  }

  /** A passed check (severity `info`). */
  static pass(checkId, message) {
    return new Finding(checkId, Severity.INFO, true, message);
  }

  /** About `object`, a Kubernetes object as `kube.get`/`kube.list` return it. */
  on(object) {
    const meta = object.metadata || {};
    return this.target(object.kind || '', meta.namespace, meta.name || '');
  }

  /** About the object `kind` `namespace`/`name` (`namespace` undefined: cluster-scoped). */
  target(kind, namespace, name) {
    this.targetRef = { kind, namespace: namespace ?? undefined, name };
    return this;
  }

  /** With extra data (anything `JSON.stringify` takes). */
  extra(value) {
    this.extraJson = JSON.stringify(value);
    return this;
  }

  toWit() {
    return {
      checkId: this.checkId,
      severity: this.severity,
      passed: this.passed,
      message: this.message,
      target: this.targetRef,
      extra: this.extraJson,
    };
  }
}

/** The `inspect` export of an `inspector`: `export const inspect = inspector((cluster) => …)`. */
export function inspector(inspect) {
  return (target) => guard(() => inspect(clusterOf(target)).map((f) => f.toWit()));
}

/** The exports of a `lifecycle-hook`: `export const { onConnect, onDisconnect } = lifecycleHook(…)`. */
export function lifecycleHook(onConnect, onDisconnect) {
  return {
    onConnect: (target) => guard(() => void onConnect(clusterOf(target))),
    onDisconnect: (target) => guard(() => void onDisconnect(clusterOf(target))),
  };
}

function decode(text, what) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw PluginError.invalid(`decoding ${what}: ${e}`);
  }
}

/** An apiVersion and kind, such as `kind('apps/v1', 'Deployment')`. */
export function kind(apiVersion, kindName) {
  return Object.freeze({ apiVersion, kind: kindName });
}

/** Read-only access to the target cluster (capability `kube`). */
export const kube = Object.freeze({
  POD: kind('v1', 'Pod'),
  SERVICE: kind('v1', 'Service'),
  CONFIG_MAP: kind('v1', 'ConfigMap'),
  SECRET: kind('v1', 'Secret'),
  NAMESPACE: kind('v1', 'Namespace'),
  NODE: kind('v1', 'Node'),
  PERSISTENT_VOLUME: kind('v1', 'PersistentVolume'),
  PERSISTENT_VOLUME_CLAIM: kind('v1', 'PersistentVolumeClaim'),
  SERVICE_ACCOUNT: kind('v1', 'ServiceAccount'),
  EVENT: kind('v1', 'Event'),
  DEPLOYMENT: kind('apps/v1', 'Deployment'),
  STATEFUL_SET: kind('apps/v1', 'StatefulSet'),
  DAEMON_SET: kind('apps/v1', 'DaemonSet'),
  REPLICA_SET: kind('apps/v1', 'ReplicaSet'),
  JOB: kind('batch/v1', 'Job'),
  CRON_JOB: kind('batch/v1', 'CronJob'),
  INGRESS: kind('networking.k8s.io/v1', 'Ingress'),
  NETWORK_POLICY: kind('networking.k8s.io/v1', 'NetworkPolicy'),
  HORIZONTAL_POD_AUTOSCALER: kind('autoscaling/v2', 'HorizontalPodAutoscaler'),
  STORAGE_CLASS: kind('storage.k8s.io/v1', 'StorageClass'),
  ROLE: kind('rbac.authorization.k8s.io/v1', 'Role'),
  ROLE_BINDING: kind('rbac.authorization.k8s.io/v1', 'RoleBinding'),
  CLUSTER_ROLE: kind('rbac.authorization.k8s.io/v1', 'ClusterRole'),
  CLUSTER_ROLE_BINDING: kind('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'),

  /** The objects of `k`: `{namespace, labels, fields}` select them (all when absent). */
  list(k, { namespace, labels, fields } = {}) {
    const options = { namespace, labelSelector: labels, fieldSelector: fields };
    return call(hostKube.list, k.apiVersion, k.kind, options).map((t) => decode(t, `a ${k.kind}`));
  },

  /** One object, `undefined` when it does not exist (`namespace` undefined: cluster-scoped). */
  get(k, namespace, name) {
    const text = call(hostKube.get, k.apiVersion, k.kind, namespace ?? undefined, name);
    return text === undefined || text === null ? undefined : decode(text, `a ${k.kind}`);
  },

  /** The log of a pod's container (its only one when `container` is absent). */
  podLogs(namespace, pod, { container, tailLines } = {}) {
    return call(hostKube.podLogs, namespace, pod, container, tailLines);
  },
});

/** The plugin's configuration (capability `config`). */
export const config = Object.freeze({
  /** The configuration, decoded: the installation's, else the manifest's default. */
  get() {
    return decode(call(hostConfig.get), 'the configuration');
  },
});

function writeLog(level, message) {
  try {
    hostLog.log(level, String(message));
  } catch {
    // As in the Rust SDK: a log line that cannot be written is not the plugin's failure.
  }
}

/** Lines in the gateway's log, attributed to the plugin (capability `log`). */
export const log = Object.freeze({
  trace: (message) => writeLog('trace', message),
  debug: (message) => writeLog('debug', message),
  info: (message) => writeLog('info', message),
  warn: (message) => writeLog('warn', message),
  error: (message) => writeLog('error', message),
});

/** A response: `status`, `headers` (lower-case names) and `body` (bytes). */
export class Response {
  constructor(response) {
    this.status = response.status;
    this.headers = response.headers;
    this.body = response.body;
  }

  header(name) {
    const lower = name.toLowerCase();
    const found = this.headers.find(([k]) => k === lower);
    return found ? found[1] : undefined;
  }

  isSuccess() {
    return this.status >= 200 && this.status < 300;
  }

  text() {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.body);
    } catch (e) {
      throw PluginError.invalid(`the response body is not UTF-8: ${e}`);
    }
  }

  json() {
    return decode(this.text(), 'the response body');
  }
}

/** A request to build up, then `send()`. */
export class Request {
  constructor(method, url, body) {
    this.method = method;
    this.url = url;
    this.headers = [];
    this.body = body;
  }

  header(name, value) {
    this.headers.push([name, value]);
    return this;
  }

  bearer(token) {
    return this.header('authorization', `Bearer ${token}`);
  }

  basic(username, password) {
    return this.header('authorization', `Basic ${btoa(`${username}:${password}`)}`);
  }

  send() {
    const request = { method: this.method, url: this.url, headers: this.headers, body: this.body };
    return new Response(call(hostHttp.send, request));
  }
}

/** Outbound HTTP to allow-listed hosts (capability `http`). */
export const http = Object.freeze({
  get: (url) => new Request('get', url, undefined),
  post: (url, body) =>
    new Request('post', url, typeof body === 'string' ? new TextEncoder().encode(body) : body),
});
