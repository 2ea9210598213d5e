/**
 * Built-in kinds the node agent meets: namespaces, pods, secrets, configmaps, PVCs, PVs, nodes,
 * events (core/v1 and events.k8s.io/v1, one storage), storage.k8s.io/v1 CSIDriver. Each carries
 * the part of its apiserver strategy that a controller can observe: defaults set on create, which
 * fields an update or a /status write may change, validation, field selectors, graceful deletion.
 * Validation is a subset of pkg/apis/core/validation, with the same field paths and messages.
 */
import { badRequest, fe, type FieldError } from './errors.js';
import type { SmpSchema } from './patch.js';
import { metaFields, type ResourceType } from './resource.js';
import {
  clone,
  deepEqual,
  isBase64,
  isConfigMapKey,
  isDNS1123Label,
  isDNS1123Subdomain,
  isPlainObject,
  isValidPathSegmentName,
  type KObj,
} from './util.js';

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

type Spec = Partial<ResourceType> & Pick<ResourceType, 'group' | 'version' | 'plural' | 'kind' | 'namespaced'>;

export function builtinType(s: Spec): ResourceType {
  const t: ResourceType = {
    apiVersion: s.group ? `${s.group}/${s.version}` : s.version,
    singular: s.kind.toLowerCase(),
    listKind: `${s.kind}List`,
    shortNames: [],
    categories: [],
    subresources: [],
    verbs: ALL_VERBS,
    storage: `${s.group || 'core'}/${s.plural}`,
    builtin: true,
    allowUnconditionalUpdate: true,
    generation: 'none',
    returnDeletedObject: false,
    nameErrors: (n) => isDNS1123Subdomain(n),
    fieldLabels: s.namespaced ? ['metadata.name', 'metadata.namespace'] : ['metadata.name'],
    fields: (o) => metaFields(o, s.namespaced),
    fieldLabelError: (l) => `field label not supported: ${l}`,
    ...s,
  };
  return t;
}

/** Generic /status strategy of built-ins: everything but status comes from the stored object. */
function statusFromOld(obj: KObj, old: KObj): void {
  if (old.status === undefined) delete obj.status;
  else obj.status = clone(old.status);
}

function onlyStatusFromNew(obj: KObj, old: KObj, keepNewMeta: boolean): void {
  for (const k of Object.keys(obj)) if (k !== 'metadata' && k !== 'status' && k !== 'apiVersion' && k !== 'kind') delete obj[k];
  for (const k of Object.keys(old)) if (k !== 'metadata' && k !== 'status' && k !== 'apiVersion' && k !== 'kind') obj[k] = clone(old[k]);
  if (!keepNewMeta) {
    // metav1.ResetObjectMetaForStatus: a status write cannot change labels, annotations, finalizers, owners.
    const m = obj.metadata;
    for (const k of ['labels', 'annotations', 'finalizers', 'ownerReferences']) {
      if (old.metadata[k] === undefined) delete m[k];
      else m[k] = clone(old.metadata[k]);
    }
  }
}

const META_SMP: SmpSchema = {
  finalizers: { primitiveMerge: true },
  ownerReferences: { mergeKey: 'uid' },
};
const withMeta = (s: SmpSchema): SmpSchema => ({ metadata: { fields: META_SMP }, ...s });

const CONTAINER_SMP: SmpSchema = {
  ports: { mergeKey: 'containerPort' },
  env: { mergeKey: 'name' },
  volumeMounts: { mergeKey: 'mountPath' },
  volumeDevices: { mergeKey: 'devicePath' },
};
const POD_SMP = withMeta({
  spec: {
    fields: {
      volumes: { mergeKey: 'name' },
      initContainers: { mergeKey: 'name', fields: CONTAINER_SMP },
      containers: { mergeKey: 'name', fields: CONTAINER_SMP },
      ephemeralContainers: { mergeKey: 'name', fields: CONTAINER_SMP },
      imagePullSecrets: { mergeKey: 'name' },
      hostAliases: { mergeKey: 'ip' },
      topologySpreadConstraints: { mergeKey: 'topologyKey' },
      resourceClaims: { mergeKey: 'name' },
      schedulingGates: { mergeKey: 'name' },
    },
  },
  status: {
    fields: {
      conditions: { mergeKey: 'type' },
      podIPs: { mergeKey: 'ip' },
      hostIPs: { mergeKey: 'ip' },
      resourceClaimStatuses: { mergeKey: 'name' },
    },
  },
});
const CONDITIONS_SMP = withMeta({ status: { fields: { conditions: { mergeKey: 'type' } } } });

// ---------------------------------------------------------------------------------------------
// Namespaces

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function namespaceLabel(obj: KObj): void {
  const m = obj.metadata;
  m.labels = { ...(m.labels ?? {}), [NAMESPACE_NAME_LABEL]: m.name };
}

export const namespaces = builtinType({
  group: '',
  version: 'v1',
  plural: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
  shortNames: ['ns'],
  subresources: ['status', 'finalize'],
  returnDeletedObject: true,
  smp: CONDITIONS_SMP,
  nameErrors: (n) => isDNS1123Label(n),
  fieldLabels: ['metadata.name', 'status.phase'],
  fields: (o) => ({ 'metadata.name': o.metadata.name, 'status.phase': String(o.status?.phase ?? '') }),
  prepareForCreate(obj) {
    obj.status = { phase: 'Active' };
    const fins: string[] = Array.isArray(obj.spec?.finalizers) ? obj.spec.finalizers : [];
    obj.spec = { ...(obj.spec ?? {}), finalizers: fins.includes('kubernetes') ? fins : [...fins, 'kubernetes'] };
    namespaceLabel(obj);
  },
  prepareForUpdate(obj, old) {
    obj.spec = clone(old.spec);
    statusFromOld(obj, old);
    namespaceLabel(obj);
  },
  prepareForStatusUpdate(obj, old) {
    onlyStatusFromNew(obj, old, false);
  },
});

// ---------------------------------------------------------------------------------------------
// Pods

function containerDefaults(c: KObj): void {
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
    const ref = c.image.split('@')[0];
    const last = ref.slice(ref.lastIndexOf('/') + 1);
    const tag = last.includes(':') ? last.slice(last.indexOf(':') + 1) : '';
    c.imagePullPolicy = c.image.includes('@') ? 'IfNotPresent' : tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
  }
  c.resources ??= {};
}

function qosClass(spec: KObj): string {
  const cs: KObj[] = [...(spec.containers ?? []), ...(spec.initContainers ?? [])];
  let any = false;
  let guaranteed = true;
  for (const c of cs) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    if (Object.keys(req).length || Object.keys(lim).length) any = true;
    for (const r of ['cpu', 'memory']) {
      if (lim[r] === undefined) guaranteed = false;
      else if (req[r] !== undefined && req[r] !== lim[r]) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

function validateContainers(list: unknown, path: string, names: Set<string>, volumes: Set<string>, required: boolean): FieldError[] {
  const errs: FieldError[] = [];
  if (list === undefined || list === null) {
    if (required) errs.push(fe.required(path));
    return errs;
  }
  if (!Array.isArray(list)) return [fe.invalid(path, list, 'must be a list')];
  if (required && list.length === 0) errs.push(fe.required(path));
  list.forEach((c: KObj, i) => {
    const p = `${path}[${i}]`;
    if (!c?.name) errs.push(fe.required(`${p}.name`));
    else {
      for (const m of isDNS1123Label(c.name)) errs.push(fe.invalid(`${p}.name`, c.name, m));
      if (names.has(c.name)) errs.push(fe.duplicate(`${p}.name`, c.name));
      names.add(c.name);
    }
    if (!c?.image) errs.push(fe.required(`${p}.image`));
    (c?.volumeMounts ?? []).forEach((vm: KObj, j: number) => {
      if (!vm?.name) errs.push(fe.required(`${p}.volumeMounts[${j}].name`));
      else if (!volumes.has(vm.name)) errs.push(fe.notFound(`${p}.volumeMounts[${j}].name`, vm.name));
      if (!vm?.mountPath) errs.push(fe.required(`${p}.volumeMounts[${j}].mountPath`));
    });
  });
  return errs;
}

const POD_UPDATE_FORBIDDEN =
  'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

function maskMutablePodSpec(spec: KObj): KObj {
  const s = clone(spec ?? {});
  for (const c of s.containers ?? []) delete c.image;
  for (const c of s.initContainers ?? []) delete c.image;
  delete s.activeDeadlineSeconds;
  delete s.tolerations;
  delete s.terminationGracePeriodSeconds;
  delete s.schedulingGates;
  return s;
}

const TERMINAL_POD_PHASES = new Set(['Succeeded', 'Failed']);

export const pods = builtinType({
  group: '',
  version: 'v1',
  plural: 'pods',
  kind: 'Pod',
  namespaced: true,
  shortNames: ['po'],
  categories: ['all'],
  subresources: ['status', 'binding'],
  returnDeletedObject: true,
  generation: 'spec',
  smp: POD_SMP,
  fieldLabels: [
    'metadata.name',
    'metadata.namespace',
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.podIPs',
    'status.nominatedNodeName',
  ],
  fields: (o) => ({
    ...metaFields(o, true),
    'spec.nodeName': String(o.spec?.nodeName ?? ''),
    'spec.restartPolicy': String(o.spec?.restartPolicy ?? ''),
    'spec.schedulerName': String(o.spec?.schedulerName ?? ''),
    'spec.serviceAccountName': String(o.spec?.serviceAccountName ?? ''),
    'spec.hostNetwork': String(o.spec?.hostNetwork === true),
    'status.phase': String(o.status?.phase ?? ''),
    'status.podIP': String(o.status?.podIP ?? ''),
    'status.podIPs': String(o.status?.podIPs?.[0]?.ip ?? ''),
    'status.nominatedNodeName': String(o.status?.nominatedNodeName ?? ''),
  }),
  prepareForCreate(obj) {
    const s: KObj = (obj.spec ??= {});
    s.restartPolicy ??= 'Always';
    s.dnsPolicy ??= 'ClusterFirst';
    s.schedulerName ??= 'default-scheduler';
    s.terminationGracePeriodSeconds ??= 30;
    s.securityContext ??= {};
    s.enableServiceLinks ??= true;
    s.preemptionPolicy ??= 'PreemptLowerPriority';
    s.priority ??= 0;
    // ServiceAccount admission: the pod runs as "default" unless it names another account.
    s.serviceAccountName ??= s.serviceAccount ?? 'default';
    s.serviceAccount ??= s.serviceAccountName;
    // DefaultTolerationSeconds admission.
    const tol: KObj[] = (s.tolerations ??= []);
    for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'])
      if (!tol.some((t) => t.key === key)) tol.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
    for (const c of s.containers ?? []) if (isPlainObject(c)) containerDefaults(c);
    for (const c of s.initContainers ?? []) if (isPlainObject(c)) containerDefaults(c);
    obj.status = { phase: 'Pending', qosClass: qosClass(s) };
  },
  prepareForUpdate(obj, old) {
    statusFromOld(obj, old);
  },
  prepareForStatusUpdate(obj, old) {
    onlyStatusFromNew(obj, old, true);
    obj.metadata.ownerReferences = clone(old.metadata.ownerReferences);
    if (obj.metadata.ownerReferences === undefined) delete obj.metadata.ownerReferences;
    if (old.status?.qosClass) obj.status = { ...(obj.status ?? {}), qosClass: old.status.qosClass };
  },
  validate(obj, old) {
    const errs: FieldError[] = [];
    const s: KObj = obj.spec ?? {};
    if (!old) {
      if (!isPlainObject(obj.spec)) return [fe.required('spec')];
      const volumes = new Set<string>();
      (s.volumes ?? []).forEach((v: KObj, i: number) => {
        if (!v?.name) errs.push(fe.required(`spec.volumes[${i}].name`));
        else {
          for (const m of isDNS1123Label(v.name)) errs.push(fe.invalid(`spec.volumes[${i}].name`, v.name, m));
          if (volumes.has(v.name)) errs.push(fe.duplicate(`spec.volumes[${i}].name`, v.name));
          volumes.add(v.name);
        }
      });
      const names = new Set<string>();
      errs.push(...validateContainers(s.containers, 'spec.containers', names, volumes, true));
      errs.push(...validateContainers(s.initContainers, 'spec.initContainers', names, volumes, false));
      if (!['Always', 'OnFailure', 'Never'].includes(s.restartPolicy))
        errs.push(fe.notSupported('spec.restartPolicy', s.restartPolicy, ['Always', 'OnFailure', 'Never']));
      if (s.nodeName) for (const m of isDNS1123Subdomain(s.nodeName)) errs.push(fe.invalid('spec.nodeName', s.nodeName, m));
      return errs;
    }
    const os = old.spec ?? {};
    if (!deepEqual(maskMutablePodSpec(s), maskMutablePodSpec(os))) errs.push(fe.forbidden('spec', POD_UPDATE_FORBIDDEN));
    for (const t of os.tolerations ?? [])
      if (!(s.tolerations ?? []).some((n: unknown) => deepEqual(n, t))) {
        errs.push(fe.forbidden('spec.tolerations', 'existing toleration can not be modified except its tolerationSeconds'));
        break;
      }
    return errs;
  },
  validateStatus(obj, old) {
    const from = old.status?.phase;
    const to = obj.status?.phase;
    if (TERMINAL_POD_PHASES.has(from) && to !== from)
      return [fe.forbidden('status.phase', `cannot transition from a terminal phase "${from}" to another phase "${to}"`)];
    return [];
  },
  gracePeriod(obj, requested) {
    if (!obj.spec?.nodeName) return 0;
    if (TERMINAL_POD_PHASES.has(obj.status?.phase)) return 0;
    let p = requested ?? obj.spec?.terminationGracePeriodSeconds ?? 30;
    if (p < 0) p = 1;
    return p;
  },
});

// ---------------------------------------------------------------------------------------------
// Secrets and ConfigMaps

const MAX_SECRET_SIZE = 1024 * 1024;

function base64Error(v: unknown): number | undefined {
  if (typeof v !== 'string') return 0;
  if (isBase64(v)) return undefined;
  const bad = v.search(/[^A-Za-z0-9+/=]/);
  return bad >= 0 ? bad : Math.floor(v.length / 4) * 4;
}

function immutableErrors(obj: KObj, old: KObj, fields: string[]): FieldError[] {
  const errs: FieldError[] = [];
  if (old.immutable !== true) return errs;
  for (const f of fields)
    if (!deepEqual(obj[f], old[f])) errs.push(fe.forbidden(f, 'field is immutable when `immutable` is set'));
  if (obj.immutable !== true) errs.push(fe.forbidden('immutable', 'field is immutable when `immutable` is set'));
  return errs;
}

function stringDataToData(obj: KObj): void {
  if (isPlainObject(obj.stringData)) {
    obj.data = { ...(isPlainObject(obj.data) ? obj.data : {}) };
    for (const [k, v] of Object.entries(obj.stringData)) obj.data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  }
  delete obj.stringData;
}

const SECRET_REQUIRED_KEYS: Record<string, string[]> = {
  'kubernetes.io/dockercfg': ['.dockercfg'],
  'kubernetes.io/dockerconfigjson': ['.dockerconfigjson'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
};

export const secrets = builtinType({
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  namespaced: true,
  smp: withMeta({}),
  fieldLabels: ['metadata.name', 'metadata.namespace', 'type'],
  fields: (o) => ({ ...metaFields(o, true), type: String(o.type ?? '') }),
  decodeCheck(obj) {
    if (obj.data === undefined || obj.data === null) return;
    if (!isPlainObject(obj.data)) throw badRequest('Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8');
    for (const v of Object.values(obj.data)) {
      const at = base64Error(v);
      if (at !== undefined)
        throw badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte ${at}`);
    }
  },
  prepareForCreate(obj) {
    stringDataToData(obj);
    obj.type ??= 'Opaque';
  },
  prepareForUpdate(obj) {
    stringDataToData(obj);
    obj.type ??= 'Opaque';
  },
  validate(obj, old) {
    const errs: FieldError[] = [];
    let total = 0;
    for (const [k, v] of Object.entries(isPlainObject(obj.data) ? obj.data : {})) {
      for (const m of isConfigMapKey(k)) errs.push(fe.invalid(`data[${k}]`, k, m));
      total += Buffer.from(String(v), 'base64').length;
    }
    if (total > MAX_SECRET_SIZE) errs.push(fe.tooLongBytes('data', `must have at most ${MAX_SECRET_SIZE} bytes`));
    const data: KObj = obj.data ?? {};
    for (const k of SECRET_REQUIRED_KEYS[obj.type] ?? []) if (!data[k]) errs.push(fe.required(`data[${k}]`));
    if (obj.type === 'kubernetes.io/basic-auth' && !data.username && !data.password) errs.push(fe.required('data[username]'));
    if (obj.type === 'kubernetes.io/service-account-token' && !obj.metadata.annotations?.['kubernetes.io/service-account.name'])
      errs.push(fe.required('metadata.annotations[kubernetes.io/service-account.name]'));
    if (old) {
      if (obj.type !== old.type) errs.push(fe.invalid('type', obj.type, 'field is immutable'));
      errs.push(...immutableErrors(obj, old, ['data']));
    }
    return errs;
  },
});

export const configmaps = builtinType({
  group: '',
  version: 'v1',
  plural: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
  shortNames: ['cm'],
  smp: withMeta({}),
  decodeCheck(obj) {
    for (const v of Object.values(isPlainObject(obj.binaryData) ? obj.binaryData : {})) {
      const at = base64Error(v);
      if (at !== undefined)
        throw badRequest(`ConfigMap in version "v1" cannot be handled as a ConfigMap: illegal base64 data at input byte ${at}`);
    }
    for (const v of Object.values(isPlainObject(obj.data) ? obj.data : {}))
      if (typeof v !== 'string')
        throw badRequest('ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal into Go struct field ConfigMap.data of type string');
  },
  validate(obj, old) {
    const errs: FieldError[] = [];
    let total = 0;
    const bin: KObj = isPlainObject(obj.binaryData) ? obj.binaryData : {};
    for (const [k, v] of Object.entries(isPlainObject(obj.data) ? obj.data : {})) {
      for (const m of isConfigMapKey(k)) errs.push(fe.invalid(`data[${k}]`, k, m));
      if (k in bin) errs.push(fe.invalid(`data[${k}]`, k, 'duplicate of key present in binaryData'));
      total += k.length + String(v).length;
    }
    for (const [k, v] of Object.entries(bin)) {
      for (const m of isConfigMapKey(k)) errs.push(fe.invalid(`binaryData[${k}]`, k, m));
      total += k.length + Buffer.from(String(v), 'base64').length;
    }
    if (total > MAX_SECRET_SIZE) errs.push(fe.tooLongBytes('', `must have at most ${MAX_SECRET_SIZE} bytes`));
    if (old) errs.push(...immutableErrors(obj, old, ['data', 'binaryData']));
    return errs;
  },
});

// ---------------------------------------------------------------------------------------------
// PersistentVolumeClaims, PersistentVolumes, Nodes

const ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'];

function accessModeErrors(modes: unknown, path: string): FieldError[] {
  if (!Array.isArray(modes) || modes.length === 0) return [fe.required(path, 'at least 1 access mode is required')];
  const errs: FieldError[] = [];
  for (const m of modes) if (!ACCESS_MODES.includes(m)) errs.push(fe.notSupported(path, m, ACCESS_MODES));
  return errs;
}

export const persistentvolumeclaims = builtinType({
  group: '',
  version: 'v1',
  plural: 'persistentvolumeclaims',
  kind: 'PersistentVolumeClaim',
  namespaced: true,
  shortNames: ['pvc'],
  subresources: ['status'],
  returnDeletedObject: true,
  smp: CONDITIONS_SMP,
  prepareForCreate(obj) {
    const s: KObj = (obj.spec ??= {});
    s.volumeMode ??= 'Filesystem';
    obj.status = { phase: 'Pending' };
  },
  prepareForUpdate(obj, old) {
    statusFromOld(obj, old);
  },
  prepareForStatusUpdate(obj, old) {
    onlyStatusFromNew(obj, old, false);
  },
  validate(obj, old) {
    const s: KObj = obj.spec ?? {};
    if (!old) {
      const errs = accessModeErrors(s.accessModes, 'spec.accessModes');
      if (!s.resources?.requests?.storage) errs.push(fe.required('spec.resources[storage]'));
      if (!['Filesystem', 'Block'].includes(s.volumeMode)) errs.push(fe.notSupported('spec.volumeMode', s.volumeMode, ['Block', 'Filesystem']));
      return errs;
    }
    const a = clone(s);
    const b = clone(old.spec ?? {});
    for (const x of [a, b]) {
      if (x.resources) delete x.resources.requests;
      delete x.volumeAttributesClassName;
    }
    if (!old.spec?.volumeName) delete a.volumeName;
    delete b.volumeName;
    if (old.spec?.volumeName) b.volumeName = old.spec.volumeName;
    if (!deepEqual(a, b))
      return [fe.forbidden('spec', 'spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims')];
    return [];
  },
});

const PV_SOURCES = [
  'awsElasticBlockStore', 'azureDisk', 'azureFile', 'cephfs', 'cinder', 'csi', 'fc', 'flexVolume', 'flocker',
  'gcePersistentDisk', 'glusterfs', 'hostPath', 'iscsi', 'local', 'nfs', 'photonPersistentDisk', 'portworxVolume',
  'quobyte', 'rbd', 'scaleIO', 'storageos', 'vsphereVolume',
];

export const persistentvolumes = builtinType({
  group: '',
  version: 'v1',
  plural: 'persistentvolumes',
  kind: 'PersistentVolume',
  namespaced: false,
  shortNames: ['pv'],
  subresources: ['status'],
  returnDeletedObject: true,
  smp: withMeta({}),
  prepareForCreate(obj) {
    const s: KObj = (obj.spec ??= {});
    s.persistentVolumeReclaimPolicy ??= 'Retain';
    s.volumeMode ??= 'Filesystem';
    obj.status = { phase: 'Pending' };
  },
  prepareForUpdate(obj, old) {
    statusFromOld(obj, old);
  },
  prepareForStatusUpdate(obj, old) {
    onlyStatusFromNew(obj, old, false);
  },
  validate(obj, old) {
    const s: KObj = obj.spec ?? {};
    const errs: FieldError[] = [];
    const sources = PV_SOURCES.filter((k) => s[k] !== undefined && s[k] !== null);
    if (!old) {
      errs.push(...accessModeErrors(s.accessModes, 'spec.accessModes'));
      if (!s.capacity?.storage) errs.push(fe.required('spec.capacity'));
      if (sources.length === 0) errs.push(fe.required('spec', 'must specify a volume type'));
      if (sources.length > 1) errs.push(fe.forbidden('spec', 'may not specify more than 1 volume type'));
      if (s.local && !s.nodeAffinity) errs.push(fe.required('spec.nodeAffinity', 'Local volume requires node affinity'));
      if (s.csi && !s.csi.driver) errs.push(fe.required('spec.csi.driver'));
      if (s.csi && !s.csi.volumeHandle) errs.push(fe.required('spec.csi.volumeHandle'));
      return errs;
    }
    const os: KObj = old.spec ?? {};
    for (const k of PV_SOURCES)
      if (!deepEqual(s[k], os[k])) {
        errs.push(fe.forbidden('spec.persistentvolumesource', 'spec.persistentvolumesource is immutable after creation'));
        break;
      }
    return errs;
  },
});

export const nodes = builtinType({
  group: '',
  version: 'v1',
  plural: 'nodes',
  kind: 'Node',
  namespaced: false,
  shortNames: ['no'],
  subresources: ['status'],
  returnDeletedObject: true,
  smp: withMeta({
    spec: { fields: { podCIDRs: { primitiveMerge: true } } },
    status: { fields: { conditions: { mergeKey: 'type' }, addresses: { mergeKey: 'type' } } },
  }),
  fieldLabels: ['metadata.name', 'spec.unschedulable'],
  fields: (o) => ({ 'metadata.name': o.metadata.name, 'spec.unschedulable': String(o.spec?.unschedulable === true) }),
  prepareForUpdate(obj, old) {
    statusFromOld(obj, old);
  },
  prepareForStatusUpdate(obj, old) {
    onlyStatusFromNew(obj, old, false);
  },
});

// ---------------------------------------------------------------------------------------------
// Events: core/v1 is the storage form; events.k8s.io/v1 converts on the way in and out.

const EVENT_FIELD_MAP: Record<string, string> = {
  'metadata.name': 'metadata.name',
  'metadata.namespace': 'metadata.namespace',
  'regarding.kind': 'involvedObject.kind',
  'regarding.namespace': 'involvedObject.namespace',
  'regarding.name': 'involvedObject.name',
  'regarding.uid': 'involvedObject.uid',
  'regarding.apiVersion': 'involvedObject.apiVersion',
  'regarding.resourceVersion': 'involvedObject.resourceVersion',
  'regarding.fieldPath': 'involvedObject.fieldPath',
  reason: 'reason',
  reportingController: 'reportingComponent',
  type: 'type',
};

function eventFields(o: KObj): Record<string, string> {
  const io: KObj = o.involvedObject ?? {};
  return {
    ...metaFields(o, true),
    'involvedObject.kind': String(io.kind ?? ''),
    'involvedObject.namespace': String(io.namespace ?? ''),
    'involvedObject.name': String(io.name ?? ''),
    'involvedObject.uid': String(io.uid ?? ''),
    'involvedObject.apiVersion': String(io.apiVersion ?? ''),
    'involvedObject.resourceVersion': String(io.resourceVersion ?? ''),
    'involvedObject.fieldPath': String(io.fieldPath ?? ''),
    reason: String(o.reason ?? ''),
    reportingComponent: String(o.reportingComponent ?? ''),
    source: String(o.source?.component ?? ''),
    type: String(o.type ?? ''),
  };
}

/** Zero values the Go types serialise for a core/v1 Event. */
function eventDefaults(o: KObj): void {
  o.involvedObject ??= {};
  o.source ??= {};
  o.reportingComponent ??= '';
  o.reportingInstance ??= '';
  for (const k of ['firstTimestamp', 'lastTimestamp', 'eventTime']) if (o[k] === undefined) o[k] = null;
}

const REPORTING_INSTANCE_LIMIT = 128;
const ACTION_LIMIT = 128;
const REASON_LIMIT = 128;
const NOTE_LIMIT = 1024;

function legacyEventErrors(e: KObj, controllerField: string): FieldError[] {
  const errs: FieldError[] = [];
  const ns = String(e.metadata.namespace ?? '');
  const ions = String(e.involvedObject?.namespace ?? '');
  if (!e.eventTime) {
    if (ions === '') {
      if (ns !== '' && ns !== 'default') errs.push(fe.invalid('involvedObject.namespace', ions, 'does not match event.namespace'));
    } else if (ns !== ions) errs.push(fe.invalid('involvedObject.namespace', ions, 'does not match event.namespace'));
  } else {
    if (ions === '' && ns !== 'default' && ns !== 'kube-system')
      errs.push(fe.invalid('involvedObject.namespace', ions, 'does not match event.namespace'));
    if (!e.reportingComponent) errs.push(fe.required(controllerField));
    if (!e.reportingInstance) errs.push(fe.required('reportingInstance'));
    if (String(e.reportingInstance ?? '').length > REPORTING_INSTANCE_LIMIT)
      errs.push(fe.invalid('reportingInstance', '', `can have at most ${REPORTING_INSTANCE_LIMIT} characters`));
    if (!e.action) errs.push(fe.required('action'));
    if (String(e.action ?? '').length > ACTION_LIMIT) errs.push(fe.invalid('action', '', `can have at most ${ACTION_LIMIT} characters`));
    if (!e.reason) errs.push(fe.required('reason'));
    if (String(e.reason ?? '').length > REASON_LIMIT) errs.push(fe.invalid('reason', '', `can have at most ${REASON_LIMIT} characters`));
    if (String(e.message ?? '').length > NOTE_LIMIT) errs.push(fe.invalid('message', '', `can have at most ${NOTE_LIMIT} characters`));
  }
  return errs;
}

export const coreEvents = builtinType({
  group: '',
  version: 'v1',
  plural: 'events',
  kind: 'Event',
  namespaced: true,
  shortNames: ['ev'],
  storage: 'core/events',
  smp: withMeta({}),
  nameErrors: (n) => isValidPathSegmentName(n),
  fieldLabels: [
    'metadata.name',
    'metadata.namespace',
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
  fields: eventFields,
  prepareForCreate: eventDefaults,
  prepareForUpdate: eventDefaults,
  validate: (e) => legacyEventErrors(e, 'reportingComponent'),
});

function eventToCore(e: KObj): KObj {
  const c: KObj = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: e.metadata,
    involvedObject: e.regarding,
    reason: e.reason,
    message: e.note,
    source: e.deprecatedSource,
    firstTimestamp: e.deprecatedFirstTimestamp,
    lastTimestamp: e.deprecatedLastTimestamp,
    count: e.deprecatedCount,
    type: e.type,
    eventTime: e.eventTime,
    series: e.series,
    action: e.action,
    related: e.related,
    reportingComponent: e.reportingController,
    reportingInstance: e.reportingInstance,
  };
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  return c;
}

function coreToEvent(c: KObj): KObj {
  const e: KObj = {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: clone(c.metadata),
    eventTime: c.eventTime ?? null,
    series: c.series,
    reportingController: c.reportingComponent || undefined,
    reportingInstance: c.reportingInstance || undefined,
    action: c.action,
    reason: c.reason,
    regarding: clone(c.involvedObject),
    related: c.related,
    note: c.message,
    type: c.type,
    deprecatedSource: c.source && Object.keys(c.source).length ? clone(c.source) : undefined,
    deprecatedFirstTimestamp: c.firstTimestamp ?? undefined,
    deprecatedLastTimestamp: c.lastTimestamp ?? undefined,
    deprecatedCount: c.count || undefined,
  };
  for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
  return e;
}

export const eventsV1 = builtinType({
  group: 'events.k8s.io',
  version: 'v1',
  plural: 'events',
  kind: 'Event',
  namespaced: true,
  shortNames: ['ev'],
  storage: 'core/events',
  nameErrors: (n) => isDNS1123Subdomain(n),
  fieldLabels: Object.keys(EVENT_FIELD_MAP),
  fieldLabelToStorage: (l) => EVENT_FIELD_MAP[l] ?? l,
  fields: eventFields,
  toStorage: eventToCore,
  fromStorage: coreToEvent,
  prepareForCreate: eventDefaults,
  prepareForUpdate: eventDefaults,
  validate(e, old) {
    const errs = legacyEventErrors(e, 'reportingController');
    if (old) return errs;
    if (!e.eventTime) errs.push(fe.required('eventTime'));
    if (e.type !== 'Normal' && e.type !== 'Warning') errs.push(fe.invalid('type', '', `has invalid value: ${e.type ?? ''}`));
    if (e.firstTimestamp) errs.push(fe.invalid('deprecatedFirstTimestamp', '', 'needs to be unset'));
    if (e.lastTimestamp) errs.push(fe.invalid('deprecatedLastTimestamp', '', 'needs to be unset'));
    if (e.count) errs.push(fe.invalid('deprecatedCount', '', 'needs to be unset'));
    if (e.source?.component || e.source?.host) errs.push(fe.invalid('deprecatedSource', '', 'needs to be unset'));
    if (e.series) {
      if (!(e.series.count >= 2)) errs.push(fe.invalid('series.count', e.series.count ?? 0, 'should be at least 2'));
      if (!e.series.lastObservedTime) errs.push(fe.required('series.lastObservedTime'));
    }
    return errs;
  },
});

// ---------------------------------------------------------------------------------------------
// storage.k8s.io/v1 CSIDriver

const FS_GROUP_POLICIES = ['None', 'File', 'ReadWriteOnceWithFSType'];
const LIFECYCLE_MODES = ['Persistent', 'Ephemeral'];

export const csidrivers = builtinType({
  group: 'storage.k8s.io',
  version: 'v1',
  plural: 'csidrivers',
  kind: 'CSIDriver',
  namespaced: false,
  returnDeletedObject: true,
  smp: withMeta({}),
  nameErrors: (n) => (n.length > 63 ? ['must be no more than 63 characters', ...isDNS1123Subdomain(n)] : isDNS1123Subdomain(n)),
  prepareForCreate(obj) {
    const s: KObj = (obj.spec ??= {});
    s.attachRequired ??= true;
    s.podInfoOnMount ??= false;
    s.requiresRepublish ??= false;
    s.storageCapacity ??= false;
    s.fsGroupPolicy ??= 'ReadWriteOnceWithFSType';
    s.volumeLifecycleModes ??= ['Persistent'];
    s.seLinuxMount ??= false;
  },
  validate(obj, old) {
    const s: KObj = obj.spec ?? {};
    const errs: FieldError[] = [];
    if (!FS_GROUP_POLICIES.includes(s.fsGroupPolicy)) errs.push(fe.notSupported('spec.fsGroupPolicy', s.fsGroupPolicy, FS_GROUP_POLICIES));
    (Array.isArray(s.volumeLifecycleModes) ? s.volumeLifecycleModes : []).forEach((m: unknown) => {
      if (!LIFECYCLE_MODES.includes(m as string)) errs.push(fe.notSupported('spec.volumeLifecycleModes', m, LIFECYCLE_MODES));
    });
    if (old && s.attachRequired !== old.spec?.attachRequired)
      errs.push(fe.invalid('spec.attachRequired', s.attachRequired, 'field is immutable'));
    return errs;
  },
});

// ---------------------------------------------------------------------------------------------
// coordination.k8s.io/v1 Lease: leader election and per-object locks. Optimistic concurrency is
// the generic one (resourceVersion on update/patch); the kind adds MicroTime decoding (exactly six
// fractional digits, as metav1.MicroTime's UnmarshalJSON parses with RFC3339Micro), int32 fields,
// and the spec validation of pkg/apis/coordination/validation.

const RFC3339_MICRO_LAYOUT = '2006-01-02T15:04:05.000000Z07:00';
const LEASE_TIME_FIELDS = ['acquireTime', 'renewTime'];
const LEASE_INT32_FIELDS = ['leaseDurationSeconds', 'leaseTransitions'];

/**
 * Parses a MicroTime the way Go's time.Parse does with the RFC3339Micro layout. Returns the UTC
 * form MicroTime marshals to, or the Go error text.
 */
export function parseMicroTime(v: string): { utc: string } | { error: string } {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(v);
  const fail = (rest: string, layoutElem: string) => ({
    error: `parsing time ${goQuoteStr(v)} as ${goQuoteStr(RFC3339_MICRO_LAYOUT)}: cannot parse ${goQuoteStr(rest)} as ${goQuoteStr(layoutElem)}`,
  });
  if (!m) return fail(v, RFC3339_MICRO_LAYOUT);
  let rest = v.slice(m[0].length);
  // stdFracSecond0: the exact number of digits of the layout
  if (rest.length < 7 || rest[0] !== '.' || !/^\d{6}$/.test(rest.slice(1, 7))) return fail(rest, '.000000');
  const micros = rest.slice(1, 7);
  rest = rest.slice(7);
  let offsetMin: number;
  if (rest === 'Z') offsetMin = 0;
  else {
    const z = /^([+-])(\d{2}):(\d{2})$/.exec(rest);
    if (!z) return fail(rest, 'Z07:00');
    offsetMin = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3]));
  }
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  if (mo! < 1 || mo! > 12) return { error: `parsing time ${goQuoteStr(v)}: month out of range` };
  if (d! < 1 || d! > new Date(Date.UTC(y!, mo!, 0)).getUTCDate()) return { error: `parsing time ${goQuoteStr(v)}: day out of range` };
  if (h! > 23) return { error: `parsing time ${goQuoteStr(v)}: hour out of range` };
  if (mi! > 59) return { error: `parsing time ${goQuoteStr(v)}: minute out of range` };
  if (s! > 59) return { error: `parsing time ${goQuoteStr(v)}: second out of range` };
  const ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!) - offsetMin * 60_000;
  const utc = new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${micros}Z`);
  return { utc };
}

function goQuoteStr(s: string): string {
  return JSON.stringify(s);
}

export const leases = builtinType({
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  kind: 'Lease',
  namespaced: true,
  returnDeletedObject: false,
  smp: withMeta({}),
  decodeCheck(obj) {
    const spec = obj.spec;
    if (spec === undefined || spec === null) return;
    const cannot = (why: string) => badRequest(`Lease in version "v1" cannot be handled as a Lease: ${why}`);
    if (!isPlainObject(spec)) throw cannot('json: cannot unmarshal into Go struct field Lease.spec of type v1.LeaseSpec');
    for (const f of LEASE_TIME_FIELDS) {
      const v = spec[f];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string') throw cannot(`json: cannot unmarshal ${typeof v} into Go struct field LeaseSpec.spec.${f} of type string`);
      const r = parseMicroTime(v);
      if ('error' in r) throw cannot(r.error);
    }
    for (const f of LEASE_INT32_FIELDS) {
      const v = spec[f];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number') throw cannot(`json: cannot unmarshal ${typeof v} into Go struct field LeaseSpec.spec.${f} of type int32`);
      if (!Number.isInteger(v) || v > 2 ** 31 - 1 || v < -(2 ** 31)) throw cannot(`json: cannot unmarshal number ${v} into Go struct field LeaseSpec.spec.${f} of type int32`);
    }
    for (const f of ['holderIdentity', 'strategy', 'preferredHolder']) {
      const v = spec[f];
      if (v !== undefined && v !== null && typeof v !== 'string') throw cannot(`json: cannot unmarshal ${typeof v} into Go struct field LeaseSpec.spec.${f} of type string`);
    }
  },
  prepareForCreate(obj) {
    normaliseLeaseSpec(obj);
  },
  prepareForUpdate(obj) {
    normaliseLeaseSpec(obj);
  },
  validate(obj) {
    const s: KObj = isPlainObject(obj.spec) ? obj.spec : {};
    const errs: FieldError[] = [];
    if (typeof s.leaseDurationSeconds === 'number' && s.leaseDurationSeconds <= 0) errs.push(fe.invalid('spec.leaseDurationSeconds', s.leaseDurationSeconds, 'must be greater than 0'));
    if (typeof s.leaseTransitions === 'number' && s.leaseTransitions < 0) errs.push(fe.invalid('spec.leaseTransitions', s.leaseTransitions, 'must be greater than or equal to 0'));
    if (s.strategy !== undefined && s.strategy !== null && s.strategy !== '' && s.strategy !== 'OldestEmulationVersion') errs.push(fe.notSupported('spec.strategy', s.strategy, ['OldestEmulationVersion']));
    if (s.preferredHolder && !s.strategy) errs.push(fe.forbidden('spec.preferredHolder', 'may only be specified if `strategy` is defined'));
    return errs;
  },
});

/** The stored form: MicroTimes in UTC with six digits (what MicroTime marshals to), nulls dropped (omitempty pointers). */
function normaliseLeaseSpec(obj: KObj): void {
  if (obj.spec === undefined || obj.spec === null) {
    obj.spec = {};
    return;
  }
  for (const [k, v] of Object.entries(obj.spec as KObj)) if (v === null) delete obj.spec[k];
  for (const f of LEASE_TIME_FIELDS) {
    const v = obj.spec[f];
    if (typeof v !== 'string') continue;
    const r = parseMicroTime(v);
    if ('utc' in r) obj.spec[f] = r.utc;
  }
}

export const BUILTIN_TYPES: ResourceType[] = [
  namespaces,
  pods,
  secrets,
  configmaps,
  persistentvolumeclaims,
  persistentvolumes,
  nodes,
  coreEvents,
  eventsV1,
  csidrivers,
  leases,
];
