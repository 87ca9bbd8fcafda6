package ratelimit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"net/netip"
)

// Key identifies what a limit counts: a client address (or IPv6 network), a
// header value, or either combined with a route. It is two machine words, so
// building, comparing and hashing one costs no allocation.
//
// The zero Key is valid and is what an invalid address maps to; the gateway
// never has one, because clientip/ always yields an address.
type Key struct{ hi, lo uint64 }

// DefaultIPv6Prefix is the IPv6 prefix length addresses are grouped by. A
// single subscriber or server usually holds a whole /64 and can pick any
// address in it, so keying by full address would give one host 2^64 fresh
// buckets.
const DefaultIPv6Prefix = 64

// KeyFromAddr keys a client address. IPv4 addresses (including IPv4-mapped
// IPv6 ones, which are the same client) are keyed by the full address; IPv6
// addresses by their first v6Prefix bits, where v6Prefix outside 1..128 means
// DefaultIPv6Prefix. Zones are ignored.
//
// Address keys are the address bits themselves, not a hash, so they mean the
// same thing in every process (a shared store can use them as they are).
func KeyFromAddr(a netip.Addr, v6Prefix int) Key {
	if !a.IsValid() {
		return Key{}
	}
	a = a.Unmap()
	b := a.As16() // IPv4 becomes ::ffff:a.b.c.d, which no masked IPv6 /64 equals
	k := Key{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
	if a.Is4() {
		return k
	}
	if v6Prefix < 1 || v6Prefix > 128 {
		v6Prefix = DefaultIPv6Prefix
	}
	switch {
	case v6Prefix <= 64:
		k.lo = 0
		k.hi &= ^uint64(0) << (64 - v6Prefix) // v6Prefix 64 shifts by 0: keep all of hi
	case v6Prefix < 128:
		k.lo &= ^uint64(0) << (128 - v6Prefix)
	}
	return k
}

// keySeeds key the hashes of KeyFromString and With. They are drawn once per
// process and never change. Being secret, they stop a client from choosing
// header values or addresses whose keys collide with someone else's (which
// would let it spend another client's budget).
var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// KeyFromString keys an arbitrary value such as an API key header. The value
// is hashed to 128 bits with a per-process secret seed, so the key table never
// holds (or retains) the string itself and collisions cannot be forced.
//
// Because the seed is per process, these keys are not comparable across
// processes or restarts: a limiter whose state is shared between instances
// must derive string keys with a shared secret instead.
func KeyFromString(s string) Key {
	return Key{hi: maphash.String(keySeeds[0], s), lo: maphash.String(keySeeds[1], s)}
}

// With combines k with a route (any number the gateway assigns to a route or
// limit, such as its index in the configuration) so that one client has a
// separate budget per route. The combination is a keyed hash rather than an
// XOR: with XOR, a client that controls its own IPv6 network could pick an
// address whose key on one route equals a victim's key on another.
// Like KeyFromString, the result is only meaningful within one process.
func (k Key) With(route uint64) Key {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], k.hi)
	binary.LittleEndian.PutUint64(b[8:], k.lo)
	binary.LittleEndian.PutUint64(b[16:], route)
	return Key{hi: maphash.Bytes(keySeeds[0], b[:]), lo: maphash.Bytes(keySeeds[1], b[:])}
}

// String renders the key in hex, for logs and store key names. It reveals the
// address for address keys and nothing for hashed ones.
func (k Key) String() string {
	return fmt.Sprintf("%016x%016x", k.hi, k.lo)
}

// SharedKeyFromString keys a value such as an API key header the same way
// in every process: the first 128 bits of its SHA-256. A limiter whose
// counters are shared between instances (Redis) needs that; the per-process
// secret of KeyFromString would give each instance its own key. Without a
// secret, a client could still not make its key collide with a chosen
// victim's: that takes a second preimage of SHA-256 truncated to 128 bits.
func SharedKeyFromString(s string) Key {
	h := sha256.New()
	h.Write([]byte("portcullis ratelimit key\x00"))
	h.Write([]byte(s))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return Key{hi: binary.BigEndian.Uint64(sum[:8]), lo: binary.BigEndian.Uint64(sum[8:16])}
}

// SharedWith is With for shared limiters: the same result in every process
// (see SharedKeyFromString), for a route number that is itself the same in
// every process (RouteID).
func (k Key) SharedWith(route uint64) Key {
	var b [len("portcullis ratelimit route\x00") + 24]byte
	n := copy(b[:], "portcullis ratelimit route\x00")
	binary.BigEndian.PutUint64(b[n:], k.hi)
	binary.BigEndian.PutUint64(b[n+8:], k.lo)
	binary.BigEndian.PutUint64(b[n+16:], route)
	sum := sha256.Sum256(b[:])
	return Key{hi: binary.BigEndian.Uint64(sum[:8]), lo: binary.BigEndian.Uint64(sum[8:16])}
}

// RouteID numbers a route (or a site's shared budget, with an empty path)
// the same way in every process, for With and SharedWith.
func RouteID(site, path string) uint64 {
	sum := sha256.Sum256([]byte("portcullis route\x00" + site + "\x00" + path))
	return binary.BigEndian.Uint64(sum[:8])
}
