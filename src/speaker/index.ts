// The node-local data plane of the speaker: election, interface choice, address binding and L2
// announcements, heartbeats. The Kubernetes glue (node Leases, verified assignments) comes on top.
export { ownerOf, groupKeyFor, isOwner, score, hasQuorum, OwnerCache, type Assignment } from './election.ts';
export { PeerLiveness, encodeHeartbeat, decodeHeartbeat, type Heartbeat, type ReceiveResult } from './heartbeat.ts';
export { HeartbeatTransport, loadHeartbeatKeys, type HeartbeatTransportOptions } from './heartbeat-transport.ts';
export { chooseInterface, candidateLinks, DEFAULT_EXCLUDES, type InterfaceChoice, type InterfaceSelection } from './interfaces.ts';
export { L2Announcer, OWNER_TAG, type L2AnnouncerOptions, type HeldAddress, type RemovedAddress } from './announcer.ts';
export {
  execRunner,
  listLinks,
  defaultRoutes,
  parseIpAddrJson,
  parseDefaultRoutes,
  CommandError,
  type CommandRunner,
  type IpLink,
  type IpAddr,
  type DefaultRoutes,
} from './ip.ts';
export { planSpeaker, nodeProblem, selectsNode, selectsPool, aggregatePrefix, trustedServices, type PlanInput, type SpeakerPlan, type L2Announcement, type BgpPeerPlan, type BgpRoute, type LocalBinding } from './plan.ts';
export { LiveSet } from './liveness.ts';
export { Speaker, createSpeakerMetrics, countingRunner, defaultBgpFactory, type SpeakerOptions, type SpeakerCacheLike, type BgpFactory } from './speaker.ts';
export type { L2Advertisement, BGPPeer, BGPAdvertisement, L2AdvertisementSpec, BGPPeerSpec, BGPAdvertisementSpec } from '../kube/speaker-config.ts';
export { CAPTURE_FILTER, NeighborRequestCapture, parseTcpdumpLine, type NeighborCaptureOptions, type NeighborFamily, type NeighborRequest } from './neighbor-capture.ts';
