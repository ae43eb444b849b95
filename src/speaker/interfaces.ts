// Which interface announces an address (pure: input is `ip -j addr` and the default routes).
//
// Order: (1) the interface with a subnet that contains the address (longest prefix wins): that is
// where the address's neighbours are; (2) the interface of the default route of the address's
// family; (3) the first configured interface. Only links that are up, ARP/NDP capable (ethernet,
// not NOARP, not loopback), not excluded, and allowed by the configuration are candidates.
import { parseIP } from '../net/address.ts';
import type { DefaultRoutes, IpLink } from './ip.ts';

/** Never announce on these: container/CNI plumbing, tunnels, kube-proxy's IPVS dummy, loopback. */
export const DEFAULT_EXCLUDES: readonly string[] = [
  'lo',
  'veth*',
  'cali*',
  'cilium*',
  'lxc*',
  'flannel*',
  'cni*',
  'docker*',
  'br-*',
  'virbr*',
  'kube-ipvs*',
  'kube-bridge',
  'tunl*',
  'vxlan*',
  'weave*',
  'genev*',
  'wg*',
  'tailscale*',
  'nodelocaldns',
  'admitlb*',
];

export interface InterfaceSelection {
  /** Names or globs (`*`, `?`) allowed to announce; empty/undefined = any. In order of preference. */
  interfaces?: string[] | undefined;
  /** Names or globs never used; default DEFAULT_EXCLUDES. An explicit `interfaces` entry without glob characters overrides an exclusion. */
  exclude?: readonly string[];
  /** Addresses with this metric are admitlb's own host addresses and never define a subnet. */
  ownerTag?: number;
}

export type ChoiceReason = 'subnet' | 'default-route' | 'configured';

export type InterfaceChoice = { ifname: string; reason: ChoiceReason } | { ifname: null; reason: string };

export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

const matchesAny = (name: string, patterns: readonly string[]) => patterns.some((p) => globToRegExp(p).test(name));

/** Whether a link can carry ARP/NDP announcements at all. */
export function isAnnounceCapable(link: IpLink): boolean {
  return (
    link.flags.includes('UP') &&
    link.flags.includes('LOWER_UP') &&
    !link.flags.includes('LOOPBACK') &&
    !link.flags.includes('NOARP') &&
    link.linkType === 'ether' &&
    link.operstate !== 'DOWN'
  );
}

/** The candidate links in preference order (configured order first, then ifindex). */
export function candidateLinks(links: IpLink[], sel: InterfaceSelection = {}): IpLink[] {
  const allow = sel.interfaces ?? [];
  const explicit = new Set(allow.filter((p) => !/[*?]/.test(p)));
  const exclude = sel.exclude ?? DEFAULT_EXCLUDES;
  const ok = links.filter(
    (l) => isAnnounceCapable(l) && (allow.length === 0 || matchesAny(l.ifname, allow)) && (explicit.has(l.ifname) || !matchesAny(l.ifname, exclude)),
  );
  const rank = (l: IpLink) => {
    const i = allow.findIndex((p) => globToRegExp(p).test(l.ifname));
    return i < 0 ? allow.length : i;
  };
  return ok.sort((a, b) => rank(a) - rank(b) || a.ifindex - b.ifindex);
}

function contains(network: string, prefixlen: number, address: string): boolean {
  const net = parseIP(network);
  const ip = parseIP(address);
  if (net.family !== ip.family) return false;
  const bits = net.family === 4 ? 32 : 128;
  if (prefixlen <= 0) return true;
  const shift = BigInt(bits - prefixlen);
  return net.value >> shift === ip.value >> shift;
}

/** Picks the interface that announces `address` (see the order at the top of this file). */
export function chooseInterface(address: string, links: IpLink[], routes: DefaultRoutes, sel: InterfaceSelection = {}): InterfaceChoice {
  const family = parseIP(address).family;
  const candidates = candidateLinks(links, sel);
  if (candidates.length === 0) return { ifname: null, reason: 'no interface is up, ARP/NDP capable, allowed and not excluded' };

  let best: { link: IpLink; prefixlen: number } | undefined;
  for (const link of candidates) {
    for (const a of link.addrs) {
      if (a.family !== family || a.scope !== 'global') continue;
      if (a.prefixlen >= (family === 4 ? 32 : 128)) continue; // host addresses (ours or anyone's) define no subnet
      if (sel.ownerTag !== undefined && a.metric === sel.ownerTag) continue;
      if (!contains(a.local, a.prefixlen, address)) continue;
      if (!best || a.prefixlen > best.prefixlen) best = { link, prefixlen: a.prefixlen };
    }
  }
  if (best) return { ifname: best.link.ifname, reason: 'subnet' };

  const defaults = family === 4 ? routes.v4 : routes.v6;
  for (const dev of defaults) {
    const link = candidates.find((l) => l.ifname === dev);
    if (link) return { ifname: link.ifname, reason: 'default-route' };
  }

  if (sel.interfaces && sel.interfaces.length > 0) return { ifname: candidates[0]!.ifname, reason: 'configured' };
  return {
    ifname: null,
    reason: `no candidate interface has a subnet containing ${address} or carries the IPv${family} default route; configure interfaces to choose one`,
  };
}
