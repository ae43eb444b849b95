// Service annotations admitlb reads (set by users) and writes (set by the webhook).

/** Set by users. */
export const ANN_POOL = 'admitlb.io/pool';
export const ANN_IPS = 'admitlb.io/ips';
export const ANN_SHARING_KEY = 'admitlb.io/sharing-key';

/** Written by admitlb: the decision, readable by people and verifiable by the speaker and controller. */
export const ANN_ASSIGNED_IPS = 'admitlb.io/assigned-ips';
export const ANN_ASSIGNED_POOL = 'admitlb.io/assigned-pool';
export const ANN_ALLOCATION = 'admitlb.io/allocation';

/** On an IPPool: allow a shrink or delete that strands allocated addresses. */
export const ANN_FORCE = 'admitlb.io/force';

/**
 * MetalLB's equivalents mean the same so that Services migrate unchanged. The metallb.universe.tf
 * forms are deprecated upstream and answered with a warning.
 */
export const POOL_ANNOTATIONS = [ANN_POOL, 'metallb.io/address-pool', 'metallb.universe.tf/address-pool'] as const;
export const IPS_ANNOTATIONS = [ANN_IPS, 'metallb.io/loadBalancerIPs', 'metallb.universe.tf/loadBalancerIPs'] as const;
export const SHARING_ANNOTATIONS = [ANN_SHARING_KEY, 'metallb.io/allow-shared-ip', 'metallb.universe.tf/allow-shared-ip'] as const;
export const DEPRECATED_PREFIX = 'metallb.universe.tf/';

export const WRITTEN_ANNOTATIONS = [ANN_ASSIGNED_IPS, ANN_ASSIGNED_POOL, ANN_ALLOCATION] as const;
