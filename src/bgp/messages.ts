// BGP-4 message framing, encoding and strict decoding (RFC 4271 §4, §6; RFC 2918; RFC 7606).
// Decoding never throws: every input yields a message or the NOTIFICATION to answer it with.

import { CapabilityCode, decodeCapabilities, encodeCapability, type Capability } from './capabilities.ts';
import { AS_TRANS, decodePathAttributes, encodeAttributes, encodeNlriList, ipv4Bytes, type PathAttributes } from './attributes.ts';
import { ErrorCode, HeaderSubcode, OpenSubcode, UpdateSubcode, notification, type NotificationSpec } from './errors.ts';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST, decodeNlri, formatIpv4 } from './prefix.ts';

export const MessageType = {
  Open: 1,
  Update: 2,
  Notification: 3,
  Keepalive: 4,
  RouteRefresh: 5,
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

export const HEADER_LENGTH = 19;
export const MAX_MESSAGE_LENGTH = 4096;
export const BGP_VERSION = 4;
const MIN_LENGTH: Record<number, number> = { 1: 29, 2: 23, 3: 21, 4: 19, 5: 23 };

export function messageTypeName(type: number): string {
  return ['?', 'OPEN', 'UPDATE', 'NOTIFICATION', 'KEEPALIVE', 'ROUTE-REFRESH'][type] ?? `type ${type}`;
}

/** Writes the 19-octet header into buf at offset (marker, length, type). */
export function writeHeader(buf: Buffer, offset: number, length: number, type: number): void {
  buf.fill(0xff, offset, offset + 16);
  buf.writeUInt16BE(length, offset + 16);
  buf[offset + 18] = type;
}

export function frame(type: number, body: Buffer): Buffer {
  const length = HEADER_LENGTH + body.length;
  if (length > MAX_MESSAGE_LENGTH) throw new RangeError(`BGP message of ${length} octets exceeds ${MAX_MESSAGE_LENGTH}`);
  const out = Buffer.allocUnsafe(length);
  writeHeader(out, 0, length, type);
  body.copy(out, HEADER_LENGTH);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Message shapes

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The 2-octet "My Autonomous System" field (AS_TRANS when the real ASN needs 4 octets). */
  myAs: number;
  holdTime: number;
  routerId: string;
  capabilities: Capability[];
  /** The speaker's real ASN: from the 4-octet AS capability when present, else myAs. */
  asn: number;
}

export interface UpdateMessage {
  type: 'update';
  /** IPv4 prefixes from the withdrawn-routes field. */
  withdrawn: string[];
  /** IPv4 prefixes from the NLRI field. */
  nlri: string[];
  attributes: PathAttributes;
  /** Non-empty when RFC 7606 says to treat this UPDATE's NLRI as withdrawn. */
  treatAsWithdraw: string[];
  /** Attributes dropped under RFC 7606 attribute-discard. */
  discarded: string[];
  /** Set when this UPDATE is an End-of-RIB marker (RFC 4724 §2). */
  endOfRib?: { afi: number; safi: number };
}

export interface NotificationMessage {
  type: 'notification';
  code: number;
  subcode: number;
  data: Buffer;
}

export interface KeepaliveMessage {
  type: 'keepalive';
}

export interface RouteRefreshMessage {
  type: 'route-refresh';
  afi: number;
  safi: number;
  /** RFC 7313 subtype octet (0 = plain refresh). */
  subtype: number;
}

export type BgpMessage = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

export type DecodeResult = { ok: true; message: BgpMessage } | { ok: false; error: NotificationSpec };

export interface DecodeContext {
  /** Both sides sent the 4-octet AS capability: AS_PATH carries 4-octet ASNs. */
  as4: boolean;
  /** Session is internal (same AS) — affects LOCAL_PREF handling. */
  ibgp?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Encoding

export interface OpenParams {
  asn: number;
  holdTime: number;
  routerId: string;
  capabilities: Capability[];
}

export function encodeOpen(p: OpenParams): Buffer {
  const caps = Buffer.concat(p.capabilities.map(encodeCapability));
  // One capabilities parameter holding all capabilities (RFC 5492 §4 allows either form).
  const params = caps.length > 0 ? Buffer.concat([Buffer.from([2, caps.length]), caps]) : Buffer.alloc(0);
  if (params.length > 255) throw new RangeError('OPEN optional parameters exceed 255 octets');
  const body = Buffer.alloc(10 + params.length);
  body[0] = BGP_VERSION;
  body.writeUInt16BE(p.asn > 0xffff ? AS_TRANS : p.asn, 1);
  body.writeUInt16BE(p.holdTime, 3);
  ipv4Bytes(p.routerId).copy(body, 5);
  body[9] = params.length;
  params.copy(body, 10);
  return frame(MessageType.Open, body);
}

const KEEPALIVE = frame(MessageType.Keepalive, Buffer.alloc(0));
export function encodeKeepalive(): Buffer {
  return KEEPALIVE;
}

export function encodeNotification(code: number, subcode: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.alloc(2 + Math.min(data.length, MAX_MESSAGE_LENGTH - HEADER_LENGTH - 2));
  body[0] = code;
  body[1] = subcode;
  data.copy(body, 2, 0, body.length - 2);
  return frame(MessageType.Notification, body);
}

/** RFC 8203 shutdown communication: a length octet then UTF-8 text, at most 255 octets. */
export function shutdownCommunication(text: string): Buffer {
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 255) bytes = bytes.subarray(0, 255);
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

export function encodeRouteRefresh(afi: number, safi: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt16BE(afi, 0);
  body[3] = safi;
  return frame(MessageType.RouteRefresh, body);
}

export interface UpdateParams {
  withdrawn?: string[];
  attributes?: PathAttributes;
  nlri?: string[];
}

/** General-purpose UPDATE encoder (IPv4 withdrawn/NLRI fields; IPv6 through attributes.mpReach/mpUnreach). */
export function encodeUpdate(p: UpdateParams, opts: { as4: boolean }): Buffer {
  const withdrawn = encodeNlriList(p.withdrawn ?? [], AFI_IPV4);
  const attrs = p.attributes ? encodeAttributes(p.attributes, opts) : Buffer.alloc(0);
  const nlri = encodeNlriList(p.nlri ?? [], AFI_IPV4);
  const body = Buffer.alloc(4 + withdrawn.length + attrs.length + nlri.length);
  body.writeUInt16BE(withdrawn.length, 0);
  withdrawn.copy(body, 2);
  body.writeUInt16BE(attrs.length, 2 + withdrawn.length);
  attrs.copy(body, 4 + withdrawn.length);
  nlri.copy(body, 4 + withdrawn.length + attrs.length);
  return frame(MessageType.Update, body);
}

/** End-of-RIB (RFC 4724 §2): an empty UPDATE for IPv4, an empty MP_UNREACH_NLRI otherwise. */
export function encodeEndOfRib(afi: number, safi = SAFI_UNICAST): Buffer {
  if (afi === AFI_IPV4 && safi === SAFI_UNICAST) return frame(MessageType.Update, Buffer.alloc(4));
  return frame(MessageType.Update, Buffer.from([0, 0, 0, 6, 0x80, 15, 3, afi >> 8, afi & 0xff, safi]));
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Checks a complete header. Returns the total length, or the NOTIFICATION for a bad header
 * (RFC 4271 §6.1). Needs at least HEADER_LENGTH octets.
 */
export function checkHeader(buf: Buffer, offset = 0): { length: number; type: number } | NotificationSpec {
  for (let i = 0; i < 16; i++) {
    if (buf[offset + i] !== 0xff) return notification(ErrorCode.MessageHeader, HeaderSubcode.ConnectionNotSynchronized, 'marker is not all ones');
  }
  const length = buf.readUInt16BE(offset + 16);
  const type = buf[offset + 18]!;
  const lengthField = buf.subarray(offset + 16, offset + 18);
  if (length < HEADER_LENGTH || length > MAX_MESSAGE_LENGTH) {
    return notification(ErrorCode.MessageHeader, HeaderSubcode.BadMessageLength, `message length ${length}`, Buffer.from(lengthField));
  }
  const min = MIN_LENGTH[type];
  if (min === undefined) {
    return notification(ErrorCode.MessageHeader, HeaderSubcode.BadMessageType, `unknown message type ${type}`, Buffer.from([type]));
  }
  const exact = type === MessageType.Keepalive || type === MessageType.RouteRefresh;
  if (length < min || (exact && length !== min)) {
    return notification(
      ErrorCode.MessageHeader,
      HeaderSubcode.BadMessageLength,
      `${messageTypeName(type)} length ${length}`,
      Buffer.from(lengthField),
    );
  }
  return { length, type };
}

/** Decodes one complete message (header included). Never throws. */
export function decodeMessage(buf: Buffer, ctx: DecodeContext = { as4: true }): DecodeResult {
  try {
    if (buf.length < HEADER_LENGTH) {
      return fail(notification(ErrorCode.MessageHeader, HeaderSubcode.BadMessageLength, `truncated header (${buf.length} octets)`));
    }
    const header = checkHeader(buf);
    if ('code' in header) return fail(header);
    if (header.length !== buf.length) {
      return fail(
        notification(ErrorCode.MessageHeader, HeaderSubcode.BadMessageLength, `length field ${header.length} but ${buf.length} octets`, Buffer.from(buf.subarray(16, 18))),
      );
    }
    const body = buf.subarray(HEADER_LENGTH);
    switch (header.type) {
      case MessageType.Open:
        return decodeOpen(body);
      case MessageType.Update:
        return decodeUpdate(body, ctx);
      case MessageType.Notification:
        return { ok: true, message: { type: 'notification', code: body[0]!, subcode: body[1]!, data: Buffer.from(body.subarray(2)) } };
      case MessageType.Keepalive:
        return { ok: true, message: { type: 'keepalive' } };
      default:
        return { ok: true, message: { type: 'route-refresh', afi: body.readUInt16BE(0), subtype: body[2]!, safi: body[3]! } };
    }
  } catch (err) {
    // Defence in depth: a decoder bug must not take the session down with an exception.
    return fail(notification(ErrorCode.MessageHeader, 0, `internal decoder error: ${(err as Error).message}`));
  }
}

function fail(error: NotificationSpec): DecodeResult {
  return { ok: false, error };
}

function decodeOpen(body: Buffer): DecodeResult {
  const version = body[0]!;
  if (version !== BGP_VERSION) {
    // Data: the largest version we support (RFC 4271 §6.2).
    return fail(notification(ErrorCode.OpenMessage, OpenSubcode.UnsupportedVersion, `unsupported version ${version}`, Buffer.from([0, BGP_VERSION])));
  }
  const myAs = body.readUInt16BE(1);
  const holdTime = body.readUInt16BE(3);
  const routerId = formatIpv4(body, 5);
  let optLen = body[9]!;
  let pos = 10;
  let extended = false;
  // RFC 9072 extended optional parameters: length 255 and a first parameter type of 255.
  if (optLen === 255 && body[10] === 255 && body.length >= 13) {
    extended = true;
    optLen = body.readUInt16BE(11);
    pos = 13;
  }
  if (pos + optLen !== body.length) {
    return fail(notification(ErrorCode.OpenMessage, OpenSubcode.Unspecific, `optional parameters length ${optLen} does not match the message`));
  }
  const capabilities: Capability[] = [];
  const end = pos + optLen;
  while (pos < end) {
    const headerLen = extended ? 3 : 2;
    if (pos + headerLen > end) return fail(notification(ErrorCode.OpenMessage, OpenSubcode.Unspecific, 'truncated optional parameter'));
    const type = body[pos]!;
    const len = extended ? body.readUInt16BE(pos + 1) : body[pos + 1]!;
    if (pos + headerLen + len > end) return fail(notification(ErrorCode.OpenMessage, OpenSubcode.Unspecific, 'optional parameter overruns the message'));
    const value = body.subarray(pos + headerLen, pos + headerLen + len);
    if (type !== 2) {
      return fail(notification(ErrorCode.OpenMessage, OpenSubcode.UnsupportedOptionalParameter, `unsupported optional parameter ${type}`));
    }
    const caps = decodeCapabilities(value);
    if (typeof caps === 'string') return fail(notification(ErrorCode.OpenMessage, OpenSubcode.Unspecific, caps));
    capabilities.push(...caps);
    pos += headerLen + len;
  }
  const as4 = capabilities.find((c): c is Extract<Capability, { code: 65 }> => c.code === CapabilityCode.FourOctetAs && 'asn' in c);
  return { ok: true, message: { type: 'open', version, myAs, holdTime, routerId, capabilities, asn: as4 ? as4.asn : myAs } };
}

function decodeUpdate(body: Buffer, ctx: DecodeContext): DecodeResult {
  const malformed = (reason: string) => fail(notification(ErrorCode.UpdateMessage, UpdateSubcode.MalformedAttributeList, reason));
  const withdrawnLen = body.readUInt16BE(0);
  if (2 + withdrawnLen + 2 > body.length) return malformed(`withdrawn routes length ${withdrawnLen} overruns the message`);
  const attrLen = body.readUInt16BE(2 + withdrawnLen);
  const attrStart = 4 + withdrawnLen;
  if (attrStart + attrLen > body.length) return malformed(`total path attribute length ${attrLen} overruns the message`);
  const withdrawn = decodeNlri(body, 2, 2 + withdrawnLen, AFI_IPV4);
  if (!withdrawn) return fail(notification(ErrorCode.UpdateMessage, UpdateSubcode.InvalidNetworkField, 'malformed withdrawn routes'));
  const nlri = decodeNlri(body, attrStart + attrLen, body.length, AFI_IPV4);
  if (!nlri) return fail(notification(ErrorCode.UpdateMessage, UpdateSubcode.InvalidNetworkField, 'malformed NLRI'));
  const attrs = decodePathAttributes(body.subarray(attrStart, attrStart + attrLen), { as4: ctx.as4, ibgp: ctx.ibgp, hasIpv4Nlri: nlri.length > 0 });
  if (attrs.error) return fail(attrs.error);
  const message: UpdateMessage = {
    type: 'update',
    withdrawn,
    nlri,
    attributes: attrs.attributes,
    treatAsWithdraw: attrs.treatAsWithdraw,
    discarded: attrs.discarded,
  };
  if (withdrawnLen === 0 && attrLen === 0 && nlri.length === 0) {
    message.endOfRib = { afi: AFI_IPV4, safi: SAFI_UNICAST };
  } else if (withdrawnLen === 0 && nlri.length === 0) {
    const a = attrs.attributes;
    const onlyUnreach = a.mpUnreach && a.mpUnreach.withdrawn.length === 0 && Object.keys(a).length === 1 && attrs.treatAsWithdraw.length === 0;
    if (onlyUnreach && a.mpUnreach) message.endOfRib = { afi: a.mpUnreach.afi, safi: a.mpUnreach.safi };
  }
  return { ok: true, message };
}

/**
 * Splits a TCP byte stream into messages. Feed chunks; it yields complete frames, or the header
 * NOTIFICATION as soon as a header is invalid (the connection must then be closed).
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
  }

  /** The next complete frame, null when more bytes are needed, or a header error. */
  next(): Buffer | null | NotificationSpec {
    if (this.pending.length < HEADER_LENGTH) return null;
    const header = checkHeader(this.pending);
    if ('code' in header) return header;
    if (this.pending.length < header.length) return null;
    const message = this.pending.subarray(0, header.length);
    this.pending = this.pending.subarray(header.length);
    return message;
  }

  get buffered(): number {
    return this.pending.length;
  }
}

export { AFI_IPV4, AFI_IPV6, SAFI_UNICAST };
