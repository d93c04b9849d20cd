#!/usr/bin/env node
// The Helm chart test (ctest helm.chart): lints deploy/helm/vigil with `helm lint --strict`,
// renders it with every values file in tests/helm/values/ and
// - validates every rendered object against the Kubernetes 1.31 schemas (npm kubernetes-models;
//   the ServiceMonitor against @kubernetes-models/prometheus-operator), and also refuses fields
//   the schemas do not know (a typo such as `readonly: true` would pass the schemas silently);
// - asserts what the chart promises: probes and security contexts on every container, no Secret
//   rendered, secret files mounted read-only, flags that follow the values, replicas, the PDB,
//   the ServiceMonitor only when enabled, the NetworkPolicies, the dashboard ConfigMap, NOTES;
// - checks that invalid values are refused (missing Secret names, schema violations).
// helm and the npm packages come from tools/bootstrap.sh (tools/helm); without them the test
// fails. Exit 0 when every check passed, 1 otherwise (each failure is printed).
import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const toolsDir = path.join(repo, 'tools', 'helm');
const helmBin = path.join(toolsDir, 'bin', 'helm');
const chartSrc = path.join(repo, 'deploy', 'helm', 'vigil');
const valuesDir = path.join(repo, 'tests', 'helm', 'values');
const release = 'ward';
const namespace = 'clinical';

let failures = 0;
let checks = 0;
/** Records one check; a failed one is printed with its context. */
function check(ok, what) {
  checks++;
  if (!ok) {
    failures++;
    console.error(`FAIL: ${what}`);
  }
  return ok;
}
function fatal(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

// --- tools ------------------------------------------------------------------------------
if (!fs.existsSync(helmBin)) {
  fatal(`helm not found at tools/helm/bin/helm: run tools/bootstrap.sh`);
}
{
  const expected = fs.readFileSync(path.join(toolsDir, 'helm.sha256'), 'utf8').split(/\s+/)[0];
  const actual = createHash('sha256').update(fs.readFileSync(helmBin)).digest('hex');
  if (actual !== expected) {
    fatal(`tools/helm/bin/helm has sha256 ${actual}, tools/helm/helm.sha256 says ${expected}`);
  }
}
const toolsRequire = createRequire(path.join(toolsDir, 'package.json'));
let YAML;
try {
  YAML = toolsRequire('yaml');
  toolsRequire('kubernetes-models/v1');
  toolsRequire('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1');
} catch (e) {
  fatal(`npm packages of tools/helm missing (run tools/bootstrap.sh): ${e.message}`);
}

function helm(args) {
  const r = spawnSync(helmBin, args, {encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60000});
  if (r.error) fatal(`helm ${args.join(' ')}: ${r.error.message}`);
  return r;
}

// --- a scratch copy of the chart ---------------------------------------------------------
// The chart is copied so the test can add a template that renders NOTES.txt, and a small
// stand-in dashboard when dashboards/vigil.json does not exist (yet).
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-helm-test-'));
process.on('exit', () => fs.rmSync(scratch, {recursive: true, force: true}));
const chart = path.join(scratch, 'vigil');
fs.cpSync(chartSrc, chart, {recursive: true});
const dashboardFile = path.join(chart, 'dashboards', 'vigil.json');
const realDashboard = fs.existsSync(dashboardFile);
if (!realDashboard) {
  fs.mkdirSync(path.dirname(dashboardFile), {recursive: true});
  fs.writeFileSync(
      dashboardFile, JSON.stringify({title: 'Vigil (test stand-in)', panels: []}, null, 2) + '\n');
}
const dashboardJson = JSON.parse(fs.readFileSync(dashboardFile, 'utf8'));
// NOTES.txt is not rendered by `helm template`: render it into a ConfigMap of the copy.
const notes = fs.readFileSync(path.join(chart, 'templates', 'NOTES.txt'), 'utf8');
fs.writeFileSync(
    path.join(chart, 'templates', '_zz_notes_check.tpl'),
    `{{- define "vigil-test.notes" -}}\n${notes}\n{{- end -}}\n`);
fs.writeFileSync(
    path.join(chart, 'templates', 'zz-notes-check.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vigil-test-notes\n' +
        'data:\n  notes: {{ include "vigil-test.notes" . | toJson }}\n');

// --- chart metadata ----------------------------------------------------------------------
const chartYaml = YAML.parse(fs.readFileSync(path.join(chartSrc, 'Chart.yaml'), 'utf8'));
const cmakeVersion = /project\(vigil VERSION ([0-9.]+)/.exec(
    fs.readFileSync(path.join(repo, 'CMakeLists.txt'), 'utf8'));
check(
    cmakeVersion && chartYaml.appVersion === cmakeVersion[1],
    `Chart.yaml appVersion ${chartYaml.appVersion} is the project version ${
        cmakeVersion && cmakeVersion[1]}`);
check(chartYaml.apiVersion === 'v2', 'Chart.yaml apiVersion is v2');

// --- schema validation -------------------------------------------------------------------
function modelClass(apiVersion, kind) {
  if (apiVersion === 'monitoring.coreos.com/v1') {
    return toolsRequire('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1')[kind];
  }
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [null, apiVersion];
  try {
    return toolsRequire(
        group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`)[kind];
  } catch {
    return undefined;
  }
}

// Wraps a value so that every property the schema validator reads is recorded: a property it
// never reads is not in the schema.
function recording(value, where, seen) {
  if (value === null || typeof value !== 'object') return value;
  const read = new Set();
  let inner;
  if (Array.isArray(value)) {
    inner = value.map((v, i) => recording(v, `${where}/${i}`, seen));
  } else {
    inner = {};
    for (const [k, v] of Object.entries(value)) inner[k] = recording(v, `${where}/${k}`, seen);
    seen.push({where, value, read});
  }
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (typeof key === 'string') read.add(key);
      return Reflect.get(target, key, receiver);
    },
  });
}

function validate(obj, label) {
  const cls = modelClass(obj.apiVersion, obj.kind);
  if (!check(cls !== undefined, `${label}: no schema for ${obj.apiVersion} ${obj.kind}`)) return;
  try {
    new cls(obj).validate();
  } catch (e) {
    check(false, `${label}: schema: ${e.message}`);
    return;
  }
  const seen = [];
  try {
    cls.prototype.validate.call(recording(obj, '', seen));
  } catch (e) {
    check(false, `${label}: schema (strict pass): ${e.message}`);
    return;
  }
  // Unknown fields, reported at the outermost level only (not everything inside them too).
  const unknown = [];
  for (const {where, value, read} of seen) {
    for (const k of Object.keys(value)) {
      checks++;
      if (!read.has(k)) unknown.push(`${where}/${k}`);
    }
  }
  unknown.sort();
  unknown.filter((u, i) => !unknown.slice(0, i).some((outer) => u.startsWith(outer + '/')))
      .forEach(
          (u) => check(false, `${label}: ${u} is not a field of ${obj.apiVersion} ${obj.kind}`));
}

// --- rendering ---------------------------------------------------------------------------
function render(chartDir, valueFiles, sets = [], kubeVersion = '1.31.0') {
  const args =
      ['template', release, chartDir, '--namespace', namespace, '--kube-version', kubeVersion];
  for (const f of valueFiles) args.push('-f', f);
  for (const s of sets) args.push('--set', s);
  return helm(args);
}

function parseObjects(text, label) {
  const objects = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (!check(
            doc.errors.length === 0,
            `${label}: YAML: ${doc.errors.map((e) => e.message).join('; ')}`))
      continue;
    const obj = doc.toJS();
    if (obj !== null && obj !== undefined) objects.push(obj);
  }
  return objects;
}

/** Flags of a container: `--name=value` (or `--name` alone) -> Map name -> value. */
function flags(container, label) {
  const m = new Map();
  for (const a of container.args || []) {
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    check(!m.has(name), `${label}: flag --${name} given twice`);
    m.set(name, eq > 0 ? a.slice(eq + 1) : '');
  }
  return m;
}

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}

// The mount that holds file `file` (the longest mountPath prefix) and its volume.
function mountOf(pod, container, file) {
  let best;
  for (const m of container.volumeMounts || []) {
    const dir = m.mountPath.endsWith('/') ? m.mountPath : m.mountPath + '/';
    if ((file.startsWith(dir) || file === m.mountPath) &&
        (!best || m.mountPath.length > best.mountPath.length))
      best = m;
  }
  if (!best) return {};
  const volume = (pod.spec.volumes || []).find((v) => v.name === best.name);
  const claim = (pod.claimTemplates || []).find((t) => t.metadata.name === best.name);
  return {mount: best, volume, claim};
}

// A secret file: the flag's path is in a read-only mount of Secret `secretName`, key `key`.
function checkSecretFile(pod, container, file, secretName, key, label) {
  const {mount, volume} = mountOf(pod, container, file);
  if (!check(mount && volume, `${label}: ${file} is on a volume`)) return;
  check(mount.readOnly === true, `${label}: ${file} is mounted read-only`);
  if (!check(volume.secret, `${label}: ${file} comes from a Secret`)) return;
  check(
      volume.secret.secretName === secretName,
      `${label}: ${file} comes from Secret ${secretName} (is ${volume.secret.secretName})`);
  const rel = path.posix.relative(mount.mountPath, file);
  const item = (volume.secret.items || []).find((i) => i.path === rel);
  check(item && item.key === key, `${label}: ${file} is key ${key} of the Secret`);
}

// --- expectations per values file ---------------------------------------------------------
const fullname = `${release}-vigil`;
const cases = [
  {
    file: 'defaults.yaml',
    workers: 3,
    slots: 16,
    pdbMax: 1,
    apiTls: false,
    mtls: false,
    clusterTls: false,
    tokens: false,
    audit: false,
    pseudonym: false,
    serviceMonitor: false,
    networkPolicy: true,
    apiFrom: 0,
    metricsNamespace: 'monitoring',
    dashboard: true,
    checkpointClaim: `${fullname}-checkpoints`,
    checkpointDir: '/var/lib/vigil/checkpoints',
    savepointDir: '/var/lib/vigil/checkpoints/savepoints',
    image: 'vigil:0.1.0',
    graphs: [],
    workerSettings: {'heartbeat-ms': '500'},
    coordinatorSettings: {'heartbeat-timeout-ms': '3000'},
  },
  {
    file: 'tls.yaml',
    workers: 3,
    slots: 16,
    pdbMax: 1,
    apiTls: true,
    mtls: true,
    clusterTls: true,
    tokens: true,
    audit: true,
    pseudonym: true,
    serviceMonitor: false,
    networkPolicy: true,
    apiFrom: 1,
    metricsNamespace: 'monitoring',
    dashboard: true,
    checkpointClaim: `${fullname}-checkpoints`,
    checkpointDir: '/var/lib/vigil/checkpoints',
    savepointDir: '/var/lib/vigil/checkpoints/savepoints',
    image: 'vigil:0.1.0',
    graphs: [],
    workerSettings: {'heartbeat-ms': '500'},
    coordinatorSettings: {'heartbeat-timeout-ms': '3000'},
  },
  {
    file: 'servicemonitor.yaml',
    workers: 3,
    slots: 16,
    pdbMax: 1,
    apiTls: false,
    mtls: false,
    clusterTls: false,
    tokens: false,
    audit: false,
    pseudonym: false,
    serviceMonitor: true,
    networkPolicy: true,
    apiFrom: 0,
    metricsNamespace: '',
    dashboard: true,
    dashboardNamespace: 'grafana',
    checkpointClaim: `${fullname}-checkpoints`,
    checkpointDir: '/var/lib/vigil/checkpoints',
    savepointDir: '/var/lib/vigil/checkpoints/savepoints',
    image: 'vigil:0.1.0',
    graphs: [],
    workerSettings: {'heartbeat-ms': '500'},
    coordinatorSettings: {'heartbeat-timeout-ms': '3000'},
  },
  {
    file: 'workers.yaml',
    workers: 12,
    slots: 8,
    pdbMax: 2,
    apiTls: false,
    mtls: false,
    clusterTls: false,
    tokens: false,
    audit: false,
    pseudonym: false,
    serviceMonitor: false,
    networkPolicy: false,
    dashboard: false,
    checkpointClaim: 'shared-checkpoints',
    checkpointDir: '/mnt/checkpoints',
    savepointDir: '/mnt/checkpoints/kept',
    image: 'registry.example/vigil:0.1.0-rc1',
    graphs: ['sepsis.yaml'],
    workerSettings: {'heartbeat-ms': '250', threads: '8'},
    coordinatorSettings: {'heartbeat-timeout-ms': '5000'},
  },
];
const valueFiles = fs.readdirSync(valuesDir).filter((f) => f.endsWith('.yaml')).sort();
check(
    JSON.stringify(valueFiles) === JSON.stringify(cases.map((c) => c.file).sort()),
    `every values file has expectations (files: ${valueFiles.join(', ')})`);

function parseToml(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const m = /^([A-Za-z0-9_-]+) = (.*)$/.exec(t);
    if (!check(m, `TOML line "${t}" is key = value`)) continue;
    out[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
  }
  return out;
}

function checkPod(pod, label, c) {
  const spec = pod.spec;
  const psc = spec.securityContext || {};
  check(psc.runAsNonRoot === true, `${label}: pod runAsNonRoot`);
  check(
      psc.runAsUser === 10001 && psc.fsGroup === 10001,
      `${label}: pod runs as uid 10001 with fsGroup 10001`);
  check(
      psc.seccompProfile && psc.seccompProfile.type === 'RuntimeDefault',
      `${label}: pod seccomp RuntimeDefault`);
  check(spec.automountServiceAccountToken === false, `${label}: no service account token mounted`);
  const containers = [...(spec.initContainers || []), ...spec.containers];
  check(containers.length > 0, `${label}: has containers`);
  for (const ct of containers) {
    const cl = `${label} container ${ct.name}`;
    check(ct.image === c.image, `${cl}: image ${ct.image} is ${c.image}`);
    const sc = ct.securityContext || {};
    check(sc.runAsNonRoot === true, `${cl}: runAsNonRoot`);
    check(sc.readOnlyRootFilesystem === true, `${cl}: readOnlyRootFilesystem`);
    check(sc.allowPrivilegeEscalation === false, `${cl}: allowPrivilegeEscalation false`);
    check(sc.privileged !== true, `${cl}: not privileged`);
    check(
        sc.capabilities && JSON.stringify(sc.capabilities.drop) === '["ALL"]' &&
            !sc.capabilities.add,
        `${cl}: drops ALL capabilities, adds none`);
    check(
        sc.seccompProfile && sc.seccompProfile.type === 'RuntimeDefault',
        `${cl}: seccomp RuntimeDefault`);
    const metricsPort = (ct.ports || []).find((p) => p.name === 'metrics');
    check(metricsPort && metricsPort.containerPort === 9249, `${cl}: metrics port 9249`);
    for (const [probe, p] of [
             ['livenessProbe', '/healthz'], ['readinessProbe', '/readyz'],
             ['startupProbe', '/healthz']]) {
      const pr = ct[probe];
      check(
          pr && pr.httpGet && pr.httpGet.path === p && pr.httpGet.port === 'metrics',
          `${cl}: ${probe} GET ${p} on the metrics port`);
    }
    check(
        ct.resources && ct.resources.requests && ct.resources.requests.memory,
        `${cl}: memory request`);
    const tmp = mountOf(pod, ct, '/tmp/x');
    check(
        tmp.mount && tmp.mount.mountPath === '/tmp' && tmp.volume && tmp.volume.emptyDir,
        `${cl}: /tmp is a writable emptyDir`);
    for (const m of ct.volumeMounts || []) {
      const v = (spec.volumes || []).find((vol) => vol.name === m.name);
      const t = (pod.claimTemplates || []).find((tpl) => tpl.metadata.name === m.name);
      check(v || t, `${cl}: mount ${m.name} has a volume`);
      if (v && (v.secret || v.configMap)) {
        check(
            m.readOnly === true,
            `${cl}: ${v.secret ? 'Secret' : 'ConfigMap'} volume ${m.name} mounted read-only`);
      }
      if (v && v.secret) {
        const mode = v.secret.defaultMode;
        check(
            mode !== undefined && (mode & 0o007) === 0,
            `${cl}: Secret volume ${m.name} is not world-readable`);
      }
    }
    const env = Object.fromEntries((ct.env || []).map((e) => [e.name, e]));
    check(
        env.POD_NAME && env.POD_NAME.valueFrom.fieldRef.fieldPath === 'metadata.name',
        `${cl}: POD_NAME from metadata.name`);
  }
}

function checkCase(c) {
  const label = c.file;
  const valuesFile = path.join(valuesDir, c.file);
  const lint = helm([
    'lint', '--strict', chartSrc, '-f', valuesFile,
    ...(realDashboard ? [] : ['--set', 'dashboard.enabled=false'])
  ]);
  check(lint.status === 0, `${label}: helm lint --strict: ${lint.stdout}${lint.stderr}`);
  const r = render(chart, [valuesFile]);
  if (!check(r.status === 0, `${label}: helm template: ${r.stderr}`)) return;
  const all = parseObjects(r.stdout, label);
  const notesCm = all.find((o) => o.metadata && o.metadata.name === 'vigil-test-notes');
  const objects = all.filter((o) => o !== notesCm);
  check(
      notesCm && typeof notesCm.data.notes === 'string' &&
          notesCm.data.notes.includes(`${fullname}-api`),
      `${label}: NOTES.txt renders and names the API Service`);

  for (const o of objects) {
    const ol = `${label}: ${o.kind} ${o.metadata && o.metadata.name}`;
    validate(o, ol);
    check(
        o.metadata.labels && o.metadata.labels['app.kubernetes.io/instance'] === release &&
            o.metadata.labels['app.kubernetes.io/name'] === 'vigil',
        `${ol}: standard labels`);
    check(o.kind !== 'Secret', `${ol}: the chart renders no Secret`);
    check(!/-----BEGIN|PRIVATE KEY/.test(JSON.stringify(o)), `${ol}: no key material inlined`);
  }
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const named = (kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const names = new Set();
  for (const o of objects) {
    const key = `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
    check(!names.has(key), `${label}: ${key} rendered once`);
    names.add(key);
  }

  // Workloads.
  const sts = byKind('StatefulSet');
  check(
      sts.length === 2 && byKind('Deployment').length === 0 && byKind('DaemonSet').length === 0,
      `${label}: exactly two StatefulSets and no other workloads`);
  const coord = named('StatefulSet', `${fullname}-coordinator`);
  const work = named('StatefulSet', `${fullname}-worker`);
  if (!check(coord && work, `${label}: coordinator and worker StatefulSets`)) return;
  check(coord.spec.replicas === 1, `${label}: one coordinator`);
  check(
      work.spec.replicas === c.workers,
      `${label}: ${c.workers} workers (has ${work.spec.replicas})`);
  for (const s of sts) {
    const pod = {spec: s.spec.template.spec, claimTemplates: s.spec.volumeClaimTemplates || []};
    check(
        matches(s.spec.selector.matchLabels, s.spec.template.metadata.labels),
        `${label}: ${s.metadata.name} selector matches its pods`);
    check(
        s.metadata.namespace === namespace,
        `${label}: ${s.metadata.name} in the release namespace`);
    checkPod(pod, `${label}: ${s.metadata.name}`, c);
  }
  const coordPod = {
    spec: coord.spec.template.spec,
    claimTemplates: coord.spec.volumeClaimTemplates
  };
  const workPod = {spec: work.spec.template.spec, claimTemplates: work.spec.volumeClaimTemplates};
  const cc = coordPod.spec.containers[0];
  const wc = workPod.spec.containers[0];
  const cf = flags(cc, `${label}: coordinator`);
  const wf = flags(wc, `${label}: worker`);
  check(
      JSON.stringify(cc.command) === '["vigil-coordinator"]',
      `${label}: coordinator runs vigil-coordinator`);
  check(JSON.stringify(wc.command) === '["vigil-worker"]', `${label}: worker runs vigil-worker`);

  // Services.
  const svcCoord = named('Service', `${fullname}-coordinator`);
  const svcWork = named('Service', `${fullname}-worker`);
  const svcApi = named('Service', `${fullname}-api`);
  check(
      svcCoord && svcCoord.spec.clusterIP === 'None' &&
          coord.spec.serviceName === svcCoord.metadata.name,
      `${label}: the coordinator's headless Service governs it`);
  check(
      svcWork && svcWork.spec.clusterIP === 'None' &&
          work.spec.serviceName === svcWork.metadata.name &&
          svcWork.spec.publishNotReadyAddresses === true,
      `${label}: the workers' headless Service governs them`);
  check(
      svcApi && svcApi.spec.type === 'ClusterIP' && svcApi.spec.ports.length === 1 &&
          svcApi.spec.ports[0].port === 7070,
      `${label}: API Service on 7070`);
  for (const svc of byKind('Service')) {
    const targets = sts.filter((s) => matches(svc.spec.selector, s.spec.template.metadata.labels));
    if (!check(
            targets.length === 1,
            `${label}: Service ${svc.metadata.name} selects one StatefulSet's pods`))
      continue;
    const ports = targets[0].spec.template.spec.containers.flatMap((ct) => ct.ports || []);
    for (const p of svc.spec.ports) {
      const tp = ports.find((cp) => cp.name === p.targetPort);
      check(
          tp && tp.containerPort === p.port,
          `${label}: Service ${svc.metadata.name} port ${p.name} -> container port ${
              p.targetPort}`);
    }
  }

  // Coordinator flags.
  const dataMount = cc.volumeMounts.find((m) => m.name === 'data');
  check(
      dataMount && coordPod.claimTemplates.some((t) => t.metadata.name === 'data'),
      `${label}: the job store is on a volumeClaimTemplate`);
  check(cf.get('listen') === '0.0.0.0:7070', `${label}: coordinator --listen 0.0.0.0:7070`);
  check(
      cf.get('cluster-listen') === '0.0.0.0:7071',
      `${label}: coordinator --cluster-listen 0.0.0.0:7071`);
  check(
      cf.get('metrics-listen') === '0.0.0.0:9249',
      `${label}: coordinator --metrics-listen 0.0.0.0:9249`);
  check(
      dataMount && (cf.get('data-dir') || '').startsWith(dataMount.mountPath + '/'),
      `${label}: --data-dir on the job store volume`);
  check(
      cf.get('checkpoint-dir') === c.checkpointDir,
      `${label}: coordinator --checkpoint-dir ${c.checkpointDir}`);
  check(
      cf.get('savepoint-dir') === c.savepointDir,
      `${label}: coordinator --savepoint-dir ${c.savepointDir}`);
  check(
      cf.get('config') === '/etc/vigil/config/coordinator.toml', `${label}: coordinator --config`);

  // TLS, tokens and audit follow the values, and their files come from read-only Secrets.
  const presence = [
    ['tls-cert', c.apiTls],
    ['tls-key', c.apiTls],
    ['tls-client-ca', c.mtls],
    ['auth-tokens', c.tokens],
    ['audit-log', c.audit],
    ['cluster-tls-cert', c.clusterTls],
    ['cluster-tls-key', c.clusterTls],
    ['cluster-tls-ca', c.clusterTls],
  ];
  for (const [f, on] of presence)
    check(cf.has(f) === on, `${label}: coordinator --${f} ${on ? 'set' : 'absent'}`);
  for (const f of ['cluster-tls-cert', 'cluster-tls-key', 'cluster-tls-ca']) {
    check(wf.has(f) === c.clusterTls, `${label}: worker --${f} ${c.clusterTls ? 'set' : 'absent'}`);
  }
  for (const f of ['tls-cert', 'tls-key', 'tls-client-ca', 'auth-tokens', 'audit-log']) {
    check(!wf.has(f), `${label}: worker has no --${f}`);
  }
  if (c.apiTls) {
    checkSecretFile(
        coordPod, cc, cf.get('tls-cert'), 'vigil-api-tls', 'tls.crt', `${label}: --tls-cert`);
    checkSecretFile(
        coordPod, cc, cf.get('tls-key'), 'vigil-api-tls', 'tls.key', `${label}: --tls-key`);
  }
  if (c.mtls)
    checkSecretFile(
        coordPod, cc, cf.get('tls-client-ca'), 'vigil-client-ca', 'ca.crt',
        `${label}: --tls-client-ca`);
  if (c.tokens)
    checkSecretFile(
        coordPod, cc, cf.get('auth-tokens'), 'vigil-tokens', 'tokens.txt',
        `${label}: --auth-tokens`);
  if (c.clusterTls) {
    for (const [f, key] of [
             ['cluster-tls-cert', 'tls.crt'], ['cluster-tls-key', 'tls.key'],
             ['cluster-tls-ca', 'ca.crt']]) {
      checkSecretFile(
          coordPod, cc, cf.get(f), 'vigil-cluster-tls', key, `${label}: coordinator --${f}`);
      checkSecretFile(workPod, wc, wf.get(f), 'vigil-worker-tls', key, `${label}: worker --${f}`);
    }
  }
  if (c.audit) {
    const {mount, claim} = mountOf(coordPod, cc, cf.get('audit-log'));
    check(
        mount && claim && !mount.readOnly,
        `${label}: --audit-log is on the coordinator's persistent volume`);
  }
  const pseudo = (wc.volumeMounts || []).find((m) => m.name === 'pseudonym-key');
  check(
      !!pseudo === c.pseudonym,
      `${label}: pseudonymization key ${c.pseudonym ? 'mounted' : 'not mounted'}`);
  if (c.pseudonym) {
    checkSecretFile(
        workPod, wc, '/etc/vigil/pseudonym/pseudonym.key', 'vigil-pseudonym-key', 'pseudonym.key',
        `${label}: pseudonym key`);
  }
  check(
      !(cc.volumeMounts || []).some((m) => m.name === 'pseudonym-key'),
      `${label}: the coordinator does not mount the pseudonymization key`);

  // Worker flags.
  const coordHost = `${fullname}-coordinator.${namespace}.svc.cluster.local`;
  check(
      wf.get('coordinator') === `${coordHost}:7071`,
      `${label}: worker --coordinator ${coordHost}:7071 (is ${wf.get('coordinator')})`);
  check(wf.get('id') === '$(POD_NAME)', `${label}: worker --id from the pod name`);
  check(
      wf.get('advertise') === `$(POD_NAME).${fullname}-worker.${namespace}.svc.cluster.local`,
      `${label}: worker --advertise is the pod's stable DNS name (is ${wf.get('advertise')})`);
  check(wf.get('listen') === '0.0.0.0:7072', `${label}: worker --listen 0.0.0.0:7072`);
  check(wf.get('slots') === String(c.slots), `${label}: worker --slots ${c.slots}`);
  check(
      wf.get('metrics-listen') === '0.0.0.0:9249',
      `${label}: worker --metrics-listen 0.0.0.0:9249`);
  check(wf.get('config') === '/etc/vigil/config/worker.toml', `${label}: worker --config`);
  const stateMount = mountOf(workPod, wc, (wf.get('state-dir') || '/nowhere') + '/x');
  check(
      stateMount.claim && stateMount.claim.metadata.name === 'state',
      `${label}: --state-dir on the state volumeClaimTemplate`);

  // The shared checkpoint volume: the same claim at the same path in both.
  for (const [pod, ct, who] of [[coordPod, cc, 'coordinator'], [workPod, wc, 'worker']]) {
    const {mount, volume} = mountOf(pod, ct, c.checkpointDir + '/x');
    check(
        mount && mount.mountPath === c.checkpointDir && volume && volume.persistentVolumeClaim &&
            volume.persistentVolumeClaim.claimName === c.checkpointClaim,
        `${label}: ${who} mounts checkpoint claim ${c.checkpointClaim} at ${c.checkpointDir}`);
  }
  const pvcs = byKind('PersistentVolumeClaim');
  if (c.checkpointClaim === `${fullname}-checkpoints`) {
    check(
        pvcs.length === 1 && pvcs[0].metadata.name === c.checkpointClaim &&
            pvcs[0].spec.accessModes.includes('ReadWriteMany'),
        `${label}: the chart creates the ReadWriteMany checkpoint PVC`);
  } else {
    check(pvcs.length === 0, `${label}: an existing checkpoint claim: no PVC created`);
  }

  // Settings files.
  const config = named('ConfigMap', `${fullname}-config`);
  if (check(config, `${label}: settings ConfigMap`)) {
    check(
        JSON.stringify(parseToml(config.data['worker.toml'])) === JSON.stringify(c.workerSettings),
        `${label}: worker.toml is ${JSON.stringify(c.workerSettings)} (is ${
            config.data['worker.toml']})`);
    check(
        JSON.stringify(parseToml(config.data['coordinator.toml'])) ===
            JSON.stringify(c.coordinatorSettings),
        `${label}: coordinator.toml is ${JSON.stringify(c.coordinatorSettings)}`);
  }
  const graphs = named('ConfigMap', `${fullname}-graphs`);
  check(
      JSON.stringify(graphs ? Object.keys(graphs.data).sort() : []) === JSON.stringify(c.graphs),
      `${label}: graphs ConfigMap holds ${c.graphs.join(', ') || 'nothing'}`);
  if (graphs) {
    const mount = cc.volumeMounts.find((m) => m.name === 'graphs');
    check(
        mount && mount.mountPath === '/etc/vigil/graphs' && mount.readOnly,
        `${label}: graphs mounted at /etc/vigil/graphs`);
    check(YAML.parse(graphs.data['sepsis.yaml']).name === 'sepsis', `${label}: graph content kept`);
  }

  // PodDisruptionBudget.
  const pdbs = byKind('PodDisruptionBudget');
  check(
      pdbs.length === 1 && pdbs[0].spec.maxUnavailable === c.pdbMax &&
          matches(pdbs[0].spec.selector.matchLabels, work.spec.template.metadata.labels) &&
          !matches(pdbs[0].spec.selector.matchLabels, coord.spec.template.metadata.labels),
      `${label}: a PDB of the workers with maxUnavailable ${c.pdbMax}`);

  // ServiceMonitor.
  const sms = byKind('ServiceMonitor');
  check(
      sms.length === (c.serviceMonitor ? 1 : 0),
      `${label}: ServiceMonitor ${c.serviceMonitor ? 'present' : 'absent'}`);
  if (sms.length === 1) {
    const sm = sms[0];
    const selected = byKind('Service').filter(
        (s) => matches(sm.spec.selector.matchLabels, s.metadata.labels) &&
            sm.spec.selector.matchExpressions.every(
                (e) => e.operator === 'In' && e.values.includes(s.metadata.labels[e.key])));
    check(
        JSON.stringify(selected.map((s) => s.metadata.name).sort()) ===
            JSON.stringify([`${fullname}-coordinator`, `${fullname}-worker`]),
        `${label}: the ServiceMonitor selects the coordinator's and workers' Services`);
    for (const s of selected)
      check(
          s.spec.ports.some((p) => p.name === 'metrics'),
          `${label}: ${s.metadata.name} has a metrics port`);
    check(
        sm.spec.endpoints.length === 1 && sm.spec.endpoints[0].port === 'metrics' &&
            sm.spec.endpoints[0].path === '/metrics' && sm.spec.endpoints[0].interval === '15s',
        `${label}: the ServiceMonitor scrapes metrics /metrics every 15s`);
    check(
        sm.spec.endpoints[0].honorLabels === true,
        `${label}: the ServiceMonitor keeps Vigil's own job label (honorLabels)`);
    check(
        sm.metadata.labels.release === 'kube-prometheus-stack',
        `${label}: ServiceMonitor labels from the values`);
    check(
        JSON.stringify(sm.spec.namespaceSelector.matchNames) === JSON.stringify([namespace]),
        `${label}: ServiceMonitor watches the release namespace`);
  }

  // NetworkPolicies.
  const nps = byKind('NetworkPolicy');
  check(
      nps.length === (c.networkPolicy ? 2 : 0),
      `${label}: ${c.networkPolicy ? 'two NetworkPolicies' : 'no NetworkPolicy'}`);
  if (c.networkPolicy) {
    const workerLabels = work.spec.template.metadata.labels;
    const forPods = (s) =>
        nps.find((np) => matches(np.spec.podSelector.matchLabels, s.spec.template.metadata.labels));
    const rule = (np, port) => np.spec.ingress.filter((i) => i.ports.some((p) => p.port === port));
    const fromWorkersOnly = (rules) => rules.length === 1 && rules[0].from &&
        rules[0].from.length === 1 && !rules[0].from[0].namespaceSelector &&
        matches(rules[0].from[0].podSelector.matchLabels, workerLabels) &&
        !matches(rules[0].from[0].podSelector.matchLabels, coord.spec.template.metadata.labels);
    const npc = forPods(coord);
    const npw = forPods(work);
    if (check(
            npc && npw && npc !== npw,
            `${label}: a NetworkPolicy each for the coordinator and the workers`)) {
      check(
          JSON.stringify(npc.spec.policyTypes) === '["Ingress"]',
          `${label}: coordinator policy restricts ingress only`);
      check(fromWorkersOnly(rule(npc, 7071)), `${label}: cluster port 7071 only from worker pods`);
      check(fromWorkersOnly(rule(npw, 7072)), `${label}: data port 7072 only from worker pods`);
      check(
          rule(npw, 7071).length === 0 && rule(npw, 7070).length === 0,
          `${label}: workers expose no API or cluster port`);
      const api = rule(npc, 7070);
      check(
          api.length === 1 && (api[0].from || []).length === c.apiFrom,
          `${label}: API port from ${c.apiFrom || 'every'} source(s)`);
      for (const np of [npc, npw]) {
        const m = rule(np, 9249);
        const ok = c.metricsNamespace ? m.length === 1 && m[0].from && m[0].from.length === 1 &&
                m[0].from[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name'] ===
                    c.metricsNamespace :
                                        m.length === 1 && !m[0].from;
        check(
            ok,
            `${label}: ${np.metadata.name} metrics port from ${
                c.metricsNamespace || 'every source'}`);
      }
    }
  }

  // Grafana dashboard.
  const dash = named('ConfigMap', `${fullname}-dashboard`);
  check(
      !!dash === c.dashboard,
      `${label}: dashboard ConfigMap ${c.dashboard ? 'present' : 'absent'}`);
  if (dash) {
    check(
        dash.metadata.labels.grafana_dashboard === '1',
        `${label}: dashboard ConfigMap labelled grafana_dashboard: "1"`);
    check(
        dash.metadata.namespace === (c.dashboardNamespace || namespace),
        `${label}: dashboard namespace`);
    let parsed;
    try {
      parsed = JSON.parse(dash.data['vigil.json']);
    } catch (e) {
      check(false, `${label}: dashboard JSON parses: ${e.message}`);
    }
    check(
        parsed && JSON.stringify(parsed) === JSON.stringify(dashboardJson),
        `${label}: dashboard is dashboards/vigil.json`);
  }
  // Every pod template carries the settings checksum, so a settings change rolls the pods.
  for (const s of sts) {
    check(
        /^[0-9a-f]{64}$/.test(
            (s.spec.template.metadata.annotations || {})['checksum/config'] || ''),
        `${label}: ${s.metadata.name} has the checksum/config annotation`);
  }
}

for (const c of cases) checkCase(c);

// --- the reference graph fits the default cluster ------------------------------------------
// examples/sepsis-watch.yaml on the defaults: one slot per subtask, with the workers the
// PodDisruptionBudget lets go at once gone too (the job restarts on the others).
{
  const graphFile = path.join(repo, 'examples', 'sepsis-watch.yaml');
  const graph = YAML.parse(fs.readFileSync(graphFile, 'utf8'));
  const fallback = (graph.execution && graph.execution.default_parallelism) || 1;
  const subtasks = graph.nodes.reduce((n, node) => n + (node.parallelism || fallback), 0);
  const c = cases.find((x) => x.file === 'defaults.yaml');
  check(
      (c.workers - c.pdbMax) * c.slots >= subtasks,
      `defaults.yaml: ${c.workers - c.pdbMax} of ${c.workers} workers with ${c.slots} slots run ` +
          `examples/sepsis-watch.yaml's ${subtasks} subtasks`);
}

// --- refusals ----------------------------------------------------------------------------
const defaults = path.join(valuesDir, 'defaults.yaml');
const refusals = [
  [['tls.api.enabled=true'], /tls\.api\.secretName/],
  [['tls.api.clientCA.enabled=true'], /needs tls\.api\.enabled/],
  [['tls.cluster.enabled=true'], /tls\.cluster\.secretName/],
  [['auth.tokens.enabled=true'], /auth\.tokens\.secretName/],
  [['audit.enabled=true', 'audit.path=/tmp/audit.log'], /audit\.path/],
  [['worker.slots=0'], /worker\.slots/],
  [['worker.replicas=-1'], /worker\.replicas/],
  [['image.pullPolicy=Sometimes'], /image\.pullPolicy/],
  [['tls.api.enable=true'], /enable/],
  [['coordinator.settings.threads[0]=1'], /settings/],
];
for (const [sets, expect] of refusals) {
  const r = render(chart, [defaults], sets);
  check(
      r.status !== 0 && expect.test(r.stderr),
      `--set ${sets.join(' --set ')} is refused naming ${expect} (status ${r.status}: ${
          r.stderr.trim()})`);
}
{
  const r = render(chart, [defaults], [], '1.27.0');
  check(
      r.status !== 0 && /kubeVersion/.test(r.stderr),
      `Kubernetes 1.27 is refused (${r.stderr.trim()})`);
  check(render(chart, [defaults], [], '1.28.0').status === 0, 'Kubernetes 1.28 is accepted');
}
// Without the dashboard file, dashboard.enabled is refused instead of shipping nothing.
{
  const bare = path.join(scratch, 'bare', 'vigil');
  fs.cpSync(chart, bare, {recursive: true});
  fs.rmSync(path.join(bare, 'dashboards'), {recursive: true, force: true});
  const r = render(bare, [defaults]);
  check(
      r.status !== 0 && /dashboards\/vigil\.json/.test(r.stderr),
      `a chart without dashboards/vigil.json refuses dashboard.enabled (${r.stderr.trim()})`);
  check(
      render(bare, [defaults], ['dashboard.enabled=false']).status === 0,
      'dashboard.enabled=false renders without the file');
}

console.log(`helm chart test: ${checks} checks, ${failures} failed${
    realDashboard ? '' : ' (dashboards/vigil.json missing: a stand-in was used)'}`);
process.exit(failures === 0 ? 0 : 1);
