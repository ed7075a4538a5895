// examples/docker and examples/kubernetes, as docs/DEPLOY.md shows them: the manifests are
// checked against what arb itself resolves from the same flags and config (arb
// --print-config in a copy of the image's /app), and both run for real on local ports.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  cpuCores,
  dockerInstructions,
  execForm,
  fileBlocks,
  flagValue,
  healthcheckCommand,
  onlyInstruction,
  portOf,
  withValues,
  yamlObjects,
} from './deploy-examples.js';
import { ArbProcess, BIN, cleanup, EXAMPLES, request, tempDir, waitFor } from './harness.js';

/** The `arb` launcher: what the image's /app/node_modules/.bin/arb links to. */
const LAUNCHER = fileURLToPath(new URL('../bin/arb', import.meta.url));
const DOCKER = path.join(EXAMPLES, 'docker');
const REPO = path.join(EXAMPLES, '..');
const KUBERNETES = path.join(EXAMPLES, 'kubernetes');

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

/** What the image's WORKDIR holds: the example's files (arb comes from this repository). */
function image(): string {
  const d = tempDir();
  dirs.push(d);
  fs.cpSync(DOCKER, d, { recursive: true });
  return d;
}

const dockerfile = () =>
  dockerInstructions(fs.readFileSync(path.join(DOCKER, 'Dockerfile'), 'utf8'));

/** The environment of a test arb: none of the test runner's PORT / WEB_CONCURRENCY. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { ARB_CMD_ARGS: _a, PORT: _p, WEB_CONCURRENCY: _w, ...base } = process.env;
  return { ...base, ...extra };
}

function arbSync(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: cleanEnv(env),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The config arb resolves from these flags in the image's working directory. */
interface Resolved {
  bind: string[];
  workers: number;
  gracefulTimeout: number;
  shutdownDelay: number;
  health: { bind: string };
  metrics: { bind: string };
}

function resolve(args: string[], env: NodeJS.ProcessEnv = {}): Resolved {
  const r = arbSync([...args, '--print-config'], image(), env);
  expect(r.code, `arb ${args.join(' ')} --print-config: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as Resolved;
}

/**
 * Starts arb through the launcher, its control socket in `cwd` rather than the image's
 * /tmp/arb.ctl (the command line beats the config file), and waits until it serves.
 */
async function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const ctl = ['--ctl-socket', path.join(cwd, 'arb.ctl')];
  const a = new ArbProcess([...args, ...ctl], { cwd, env, launcher: LAUNCHER });
  running.push(a);
  const outcome = await Promise.race([
    a.ready().then(
      () => 'ready',
      (err: Error) => err.message,
    ),
    a.exited().then((code) => `arb exited (${code}): ${a.stderr}`),
  ]);
  if (outcome !== 'ready') throw new Error(outcome);
  return a;
}

/** The example's flags with every address on 127.0.0.1, port 0 (the ports are read from the logs). */
const LOCAL_ADDRESSES = {
  '--bind': '127.0.0.1:0',
  '--health-bind': '127.0.0.1:0',
  '--metrics-bind': '127.0.0.1:0',
};

const local = (port: number) => ({ host: '127.0.0.1', port });

/** The app's TCP address (the examples bind no unix socket). */
async function tcp(a: ArbProcess): Promise<{ host: string; port: number }> {
  const t = await a.tcpTarget();
  if (!('port' in t)) throw new Error(`not a TCP listener: ${JSON.stringify(t)}`);
  return t;
}

/** The port of an endpoint server (`metrics`, `health`), from its `... at <url>` log line. */
async function endpointPort(a: ArbProcess, what: 'metrics' | 'health'): Promise<number> {
  const line = await a.log((e) => typeof e[what] === 'string', `${what} server listening`);
  return Number(new URL(line[what] as string).port);
}

/** Refused: nothing listens on the port any more. */
async function refused(port: number): Promise<boolean> {
  return request(local(port)).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
  );
}

describe('examples/docker', () => {
  it('runs arb itself as PID 1: exec form, no npm, npx, shell or tini in between', () => {
    const all = dockerfile();
    expect(onlyInstruction(all, 'FROM').value).toMatch(/^node:\d+(-[a-z]+)*(@sha256:\w+)?$/);
    const entrypoint = execForm(onlyInstruction(all, 'ENTRYPOINT').value);
    const cmd = execForm(onlyInstruction(all, 'CMD').value);
    for (const word of [...entrypoint, ...cmd]) {
      expect(path.basename(word)).not.toMatch(/^(npm|npx|pnpm|yarn|sh|bash|tini|dumb-init)$/);
    }
    // /app/node_modules/.bin/arb is npm's link to the bin `arb` of the package `arb`, which
    // the example depends on; that bin is the launcher this test runs (it execs node)
    const workdir = onlyInstruction(all, 'WORKDIR').value;
    expect(entrypoint).toEqual([path.posix.join(workdir, 'node_modules/.bin/arb')]);
    const pkg = JSON.parse(fs.readFileSync(path.join(DOCKER, 'package.json'), 'utf8'));
    expect(Object.keys(pkg.dependencies)).toContain('arb');
    const cli = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(cli.name).toBe('arb');
    expect(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', cli.bin.arb)).toBe(
      LAUNCHER,
    );
    // what COPY puts next to package.json is all the app needs
    const copied = all
      .filter((i) => i.keyword === 'COPY')
      .flatMap((i) => i.value.split(/\s+/).slice(0, -1));
    for (const file of copied) expect(fs.existsSync(path.join(DOCKER, file)), file).toBe(true);
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'app.mjs', 'arb.config.json']));
  });

  it("CMD's flags pass arb --check-config in the image's working directory", () => {
    const cmd = execForm(onlyInstruction(dockerfile(), 'CMD').value);
    const r = arbSync([...cmd, '--check-config'], image());
    expect(r.code, r.stderr).toBe(0);
  });

  it('serves for real with its CMD: the app, /livez, /readyz, /metrics, HEALTHCHECK; TERM stops all', async () => {
    const all = dockerfile();
    const cmd = execForm(onlyInstruction(all, 'CMD').value);
    const probe = healthcheckCommand(onlyInstruction(all, 'HEALTHCHECK').value);
    const healthPort = portOf(flagValue(cmd, '--health-bind')!);
    // the CMD's own flags, with local addresses on free ports
    const cwd = image();
    const master = await start(withValues(cmd, LOCAL_ADDRESSES), cwd);
    const health = await endpointPort(master, 'health');
    // the launcher exec'd node: the process docker would start is the master itself
    const serving = await master.ready();
    expect(serving.pid).toBe(master.pid);
    const target = await tcp(master);
    const res = await request(target, { path: '/hello' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ method: 'GET', url: '/hello' });
    master.pids.add(JSON.parse(res.body).pid);
    expect((await request(local(health), { path: '/livez' })).status).toBe(200);
    expect((await request(local(health), { path: '/readyz' })).status).toBe(200);
    expect((await request(local(health), { path: '/' })).status).toBe(404);
    const metrics = await request(local(await endpointPort(master, 'metrics')), {
      path: '/metrics',
    });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^arb_workers_alive \d+$/m);
    // the image's HEALTHCHECK command, pointed at this health port
    const check = probe.map((w) => w.replace(`:${healthPort}/`, `:${health}/`));
    expect(check).not.toEqual(probe);
    const checked = spawnSync(check[0] === 'node' ? process.execPath : check[0]!, check.slice(1));
    expect(checked.status, String(checked.stderr)).toBe(0);
    expect(await master.stop()).toBe(0);
    expect(await refused(health)).toBe(true);
    expect(await refused(target.port)).toBe(true);
    expect(fs.existsSync(path.join(cwd, 'arb.ctl'))).toBe(false);
  });
});

// --- Kubernetes ---

interface Probe {
  httpGet: { path: string; port: number | string };
}
interface Container {
  name: string;
  command?: string[];
  args: string[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { resourceFieldRef?: { resource: string; divisor?: string | number } };
  }[];
  ports: { name?: string; containerPort: number }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  lifecycle?: { preStop?: unknown };
  resources: { requests?: { cpu?: string | number }; limits?: { cpu?: string | number } };
}
interface Deployment {
  metadata: { name: string };
  spec: {
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: { terminationGracePeriodSeconds?: number; containers: Container[] };
    };
  };
}
interface Service {
  metadata: { labels?: Record<string, string> };
  spec: {
    selector: Record<string, string>;
    ports: { name: string; port: number; targetPort: number | string }[];
  };
}
interface ServiceMonitor {
  spec: {
    selector: { matchLabels: Record<string, string> };
    endpoints: { port: string; path?: string }[];
  };
}
interface Hpa {
  spec: {
    scaleTargetRef: { kind: string; name: string };
    metrics: { type: string; resource?: { name: string } }[];
  };
}

function manifests() {
  const objects = yamlObjects(KUBERNETES).map((d) => d.object);
  const one = <T>(kind: string): T => {
    const found = objects.filter((o) => o.kind === kind);
    expect(found, kind).toHaveLength(1);
    return found[0] as T;
  };
  const deployment = one<Deployment>('Deployment');
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'web')!;
  return {
    objects,
    deployment,
    container,
    service: one<Service>('Service'),
    serviceMonitor: one<ServiceMonitor>('ServiceMonitor'),
    hpa: one<Hpa>('HorizontalPodAutoscaler'),
  };
}

/** A container port by number or by name, as a probe or a targetPort names it. */
function containerPort(c: Container, ref: number | string): number {
  if (typeof ref === 'number') return ref;
  const p = c.ports.find((x) => x.name === ref);
  if (!p) throw new Error(`no container port named ${ref}`);
  return p.containerPort;
}

/** The container's environment as the kubelet would set it (limits.cpu: whole cores, rounded up). */
function containerEnv(c: Container): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const e of c.env ?? []) {
    const field = e.valueFrom?.resourceFieldRef;
    if (e.value !== undefined) env[e.name] = e.value;
    else if (field?.resource === 'limits.cpu') {
      const cores = cpuCores(c.resources.limits!.cpu!) / cpuCores(field.divisor ?? 1);
      env[e.name] = String(Math.ceil(cores));
    } else throw new Error(`env ${e.name}: not a value or limits.cpu`);
  }
  return env;
}

describe('examples/kubernetes', () => {
  it('every YAML document parses and is a Kubernetes object', () => {
    const docs = yamlObjects(KUBERNETES);
    expect(new Set(docs.map((d) => d.file))).toEqual(
      new Set(['deployment.yaml', 'hpa.yaml', 'servicemonitor.yaml']),
    );
    for (const { file, object } of docs) {
      expect(object.apiVersion, file).toEqual(expect.any(String));
      expect(object.kind, file).toEqual(expect.any(String));
      expect((object.metadata as { name?: unknown }).name, file).toBe('myapp');
    }
    expect(docs.map((d) => d.object.kind).sort()).toEqual([
      'Deployment',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'Service',
      'ServiceMonitor',
    ]);
  });

  it('the container runs the image ENTRYPOINT (arb) with --health-bind and --metrics-bind', () => {
    const { container } = manifests();
    // no command: the Dockerfile's ENTRYPOINT, arb itself, runs with these args
    expect(container.command).toBeUndefined();
    expect(execForm(onlyInstruction(dockerfile(), 'ENTRYPOINT').value)[0]).toMatch(/\/\.bin\/arb$/);
    expect(flagValue(container.args, '--health-bind')).toEqual(expect.any(String));
    expect(flagValue(container.args, '--metrics-bind')).toEqual(expect.any(String));
    expect(container.lifecycle?.preStop).toBeUndefined();
  });

  it('probes, ports, Service, Prometheus and the grace period agree with what arb resolves', () => {
    const { deployment, container, service, serviceMonitor, hpa } = manifests();
    const env = containerEnv(container);
    const cfg = resolve(container.args, env);
    const http = portOf(cfg.bind[0]!);
    const health = portOf(cfg.health.bind);
    const metrics = portOf(cfg.metrics.bind);
    expect(cfg.bind).toHaveLength(1);
    expect(new Set([http, health, metrics]).size).toBe(3);

    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(containerPort(container, container.readinessProbe.httpGet.port)).toBe(health);
    expect(container.livenessProbe.httpGet.path).toBe('/livez');
    expect(containerPort(container, container.livenessProbe.httpGet.port)).toBe(health);
    expect(container.ports.map((p) => p.containerPort).sort()).toEqual(
      [http, health, metrics].sort(),
    );

    const template = deployment.spec.template;
    expect(service.spec.selector).toEqual(template.metadata.labels);
    const servicePort = (name: string) => {
      const p = service.spec.ports.find((x) => x.name === name);
      if (!p) throw new Error(`no Service port named ${name}`);
      return containerPort(container, p.targetPort);
    };
    expect(servicePort('http')).toBe(http);
    expect(servicePort('metrics')).toBe(metrics);

    expect(template.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(metrics),
      'prometheus.io/path': '/metrics',
    });
    expect(service.metadata.labels).toMatchObject(serviceMonitor.spec.selector.matchLabels);
    for (const e of serviceMonitor.spec.endpoints) {
      expect(servicePort(e.port)).toBe(metrics);
      expect(e.path ?? '/metrics').toBe('/metrics');
    }

    // TERM: shutdownDelay s of accepting with /readyz 503, then up to gracefulTimeout s of drain
    expect(cfg.shutdownDelay).toBeGreaterThan(0);
    expect(template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(
      cfg.shutdownDelay + cfg.gracefulTimeout + 5,
    );
    // one worker per CPU of the limit; the HPA scales on CPU, which needs a CPU request
    expect(cfg.workers).toBe(Math.ceil(cpuCores(container.resources.limits!.cpu!)));
    expect(container.resources.requests?.cpu).toBeDefined();
    expect(hpa.spec.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.metrics.map((m) => m.resource?.name)).toContain('cpu');
  });

  it("the container's args pass arb --check-config in the image's working directory", () => {
    const { container } = manifests();
    const r = arbSync([...container.args, '--check-config'], image(), containerEnv(container));
    expect(r.code, r.stderr).toBe(0);
  });

  it('on TERM: /readyz 503 at once, the app still served during --shutdown-delay, then gone', async () => {
    const { container } = manifests();
    const delay = Number(flagValue(container.args, '--shutdown-delay'));
    expect(delay).toBeGreaterThan(0);
    const a = await start(withValues(container.args, LOCAL_ADDRESSES), image(), {
      WEB_CONCURRENCY: '2',
    });
    const port = await endpointPort(a, 'health');
    const target = await tcp(a);
    expect((await request(local(port), { path: '/readyz' })).status).toBe(200);
    const termAt = Date.now();
    a.child.kill('SIGTERM');
    const notReady = await waitFor(
      async () => {
        const r = await request(local(port), { path: '/readyz' });
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: delay * 1000, intervalMs: 20, what: '/readyz to answer 503' },
    );
    expect(JSON.parse(notReady.body)).toMatchObject({ ready: false });
    // a load balancer that has not seen the 503 yet still gets answers
    const late = await request(target, { path: '/late' });
    expect(late.status).toBe(200);
    expect(Date.now() - termAt).toBeLessThan(delay * 1000);
    expect(await a.exited()).toBe(0);
    expect(Date.now() - termAt).toBeGreaterThanOrEqual(delay * 1000);
    expect(await refused(target.port)).toBe(true);
  });
});

describe('docs/DEPLOY.md', () => {
  const blocks = fileBlocks(fs.readFileSync(path.join(REPO, 'docs/DEPLOY.md'), 'utf8'));

  it('shows examples/docker/Dockerfile verbatim', () => {
    const shown = blocks.filter((b) => b.file === 'examples/docker/Dockerfile');
    expect(shown).toHaveLength(1);
    expect(shown[0]!.body).toBe(fs.readFileSync(path.join(DOCKER, 'Dockerfile'), 'utf8'));
  });

  it("shows an excerpt of examples/kubernetes/deployment.yaml that matches the file's Deployment", () => {
    const shown = blocks.filter((b) => b.file === 'examples/kubernetes/deployment.yaml');
    expect(shown).toHaveLength(1);
    const excerpt = parseYaml(shown[0]!.body) as Record<string, unknown>;
    expect(Object.keys(excerpt)).toEqual(['spec']);
    expect(manifests().deployment).toMatchObject(excerpt);
  });

  it('names no other file in a code block', () => {
    expect(blocks.map((b) => b.file).sort()).toEqual([
      'examples/docker/Dockerfile',
      'examples/kubernetes/deployment.yaml',
    ]);
  });
});
