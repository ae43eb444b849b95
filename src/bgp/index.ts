// Public API of the BGP library. See README.md.
export { BgpSpeaker, type AnnouncedRoute, type CloseOptions } from './speaker.ts';
export { wellKnownCommunities, type RouteAttributes } from './adj-rib-out.ts';
export {
  BgpConfigError,
  CeaseSubcode,
  ErrorCode,
  FsmSubcode,
  HeaderSubcode,
  OpenSubcode,
  UpdateSubcode,
  describeNotification,
} from './errors.ts';
export type {
  BgpHooks,
  ConnectRetryOptions,
  GracefulRestartOptions,
  Logger,
  NotificationEvent,
  PeerError,
  PeerOptions,
  PeerStatus,
  SessionState,
  SpeakerEvents,
  SpeakerOptions,
  StateChangeEvent,
  UpdateErrorEvent,
  BfdStateEvent,
} from './types.ts';
export type { Family } from './prefix.ts';
export { nativeUnavailable } from './native.ts';
export type { BfdOptions, BfdState, BfdStatus } from './bfd.ts';
// Codec, for tools and tests that speak BGP on the wire.
export * as codec from './messages.ts';
