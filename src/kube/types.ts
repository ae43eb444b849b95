// The slice of Kubernetes objects that admitlb's pure core reads. Plain JSON shapes (what the API
// server sends), so fixtures of real AdmissionReviews can be fed straight in.

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string | null;
  deletionTimestamp?: string | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  [key: string]: unknown;
}

/** One RFC 6902 operation, as admission answers and Service patches carry them. */
export interface JsonPatchOp {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

export interface ServicePort {
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  targetPort?: number | string;
  nodePort?: number;
}

export interface Service {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
    selector?: Record<string, string>;
    ports?: ServicePort[];
    clusterIP?: string;
    clusterIPs?: string[];
    externalIPs?: string[];
    loadBalancerIP?: string;
    loadBalancerClass?: string;
    ipFamilies?: ('IPv4' | 'IPv6')[];
    ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
    externalTrafficPolicy?: 'Cluster' | 'Local';
    [key: string]: unknown;
  };
  status?: {
    loadBalancer?: { ingress?: { ip?: string; hostname?: string; ipMode?: string }[] };
    [key: string]: unknown;
  };
}

export interface Namespace {
  metadata: ObjectMeta;
}

/** The parts of a Node the speaker reads (its Ready condition, labels). */
export interface NodeObject {
  metadata: ObjectMeta;
  status?: { conditions?: { type: string; status: string }[] | null; [k: string]: unknown } | null;
  [k: string]: unknown;
}

/** The parts of an EndpointSlice the speaker reads (which nodes have ready endpoints). */
export interface EndpointSliceObject {
  metadata: ObjectMeta;
  addressType?: string;
  endpoints?: { addresses?: string[]; nodeName?: string | null; conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null } | null }[] | null;
  [k: string]: unknown;
}
