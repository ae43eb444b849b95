// A set of bigints stored as coalesced, disjoint [first, last] intervals in a B-tree. Finding the
// lowest member-free value at or after x is one tree lookup, however many values the set holds:
// this is what keeps allocation cost flat from a /24 to an IPv6 /48.
import BTreeModule from 'sorted-btree';

// sorted-btree is CommonJS with an `exports.default` class: under ESM interop it arrives wrapped.
const BTree = BTreeModule.default;

const compareBigInt = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

export class IntervalSet {
  // first -> last
  private readonly tree = new BTree<bigint, bigint>(undefined, compareBigInt);
  private count = 0n;

  get size(): bigint {
    return this.count;
  }

  get intervals(): number {
    return this.tree.size;
  }

  has(v: bigint): boolean {
    const left = this.tree.getPairOrNextLower(v);
    return left !== undefined && left[1] >= v;
  }

  add(v: bigint): boolean {
    const left = this.tree.getPairOrNextLower(v);
    if (left && left[1] >= v) return false;
    const joinsLeft = left !== undefined && left[1] === v - 1n;
    const rightLast = this.tree.get(v + 1n);
    if (joinsLeft && rightLast !== undefined) {
      this.tree.delete(v + 1n);
      this.tree.set(left[0], rightLast);
    } else if (joinsLeft) {
      this.tree.set(left[0], v);
    } else if (rightLast !== undefined) {
      this.tree.delete(v + 1n);
      this.tree.set(v, rightLast);
    } else {
      this.tree.set(v, v);
    }
    this.count += 1n;
    return true;
  }

  delete(v: bigint): boolean {
    const left = this.tree.getPairOrNextLower(v);
    if (!left || left[1] < v) return false;
    const [first, last] = left;
    this.tree.delete(first);
    if (first < v) this.tree.set(first, v - 1n);
    if (v < last) this.tree.set(v + 1n, last);
    this.count -= 1n;
    return true;
  }

  /** The smallest value ≥ v that is not in the set. */
  nextAbsent(v: bigint): bigint {
    const left = this.tree.getPairOrNextLower(v);
    return left && left[1] >= v ? left[1] + 1n : v;
  }
}
