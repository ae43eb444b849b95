// The speaker's configuration kinds (admitlb.io/v1alpha1): L2Advertisement, BGPPeer and
// BGPAdvertisement. Their zod schemas, CRDs and validating webhook live in src/config/ (the single
// source of truth); the speaker reads the objects as the API server stores them, i.e. the schemas'
// INPUT types (defaults optional): CRD defaulting fills them on a real API server, but the speaker
// never relies on it and applies every default itself (`?? 179`, `?? 32`, ...).
import type { z } from 'zod';
import type { LabelSelector, bgpAdvertisementSpecSchema, bgpPeerSpecSchema, l2AdvertisementSpecSchema } from '../config/schemas.ts';
import type { ObjectMeta } from './types.ts';

export type { LabelSelector };

export type L2AdvertisementSpec = z.input<typeof l2AdvertisementSpecSchema>;
export type BGPPeerSpec = z.input<typeof bgpPeerSpecSchema>;
export type BGPAdvertisementSpec = z.input<typeof bgpAdvertisementSpecSchema>;

interface ConfigObject<K extends string, S> {
  apiVersion?: string;
  kind?: K;
  metadata: ObjectMeta;
  spec: S;
}

export type L2Advertisement = ConfigObject<'L2Advertisement', L2AdvertisementSpec>;
export type BGPPeer = ConfigObject<'BGPPeer', BGPPeerSpec>;
export type BGPAdvertisement = ConfigObject<'BGPAdvertisement', BGPAdvertisementSpec>;

/** Plural resource names under admitlb.io/v1alpha1 (what the informers watch). */
export const SPEAKER_CONFIG_PLURALS = {
  l2Advertisements: 'l2advertisements',
  bgpPeers: 'bgppeers',
  bgpAdvertisements: 'bgpadvertisements',
} as const;
