package tlsmgr

import (
	"context"
	"crypto/x509"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/tlsmgr/acmetest"
	"github.com/redis/go-redis/v9"
)

// clusterInstance is one Portcullis instance of a cluster test: its own
// listeners, cache directory and Manager, sharing Redis with the others.
type clusterInstance struct {
	m        *Manager
	a        *ACME
	tlsAddr  string
	cacheDir string
}

// newClusterInstance builds an instance on listeners of its own, started or
// only serving.
func newClusterInstance(t *testing.T, ca *acmetest.Server, c redis.UniversalClient, prefix string, key []byte, challenge string, hosts []string, start bool) *clusterInstance {
	t.Helper()
	hl, tl := listeners(t)
	return clusterInstanceOn(t, ca, c, prefix, key, challenge, hosts, start, hl, tl)
}

func clusterInstanceOn(t *testing.T, ca *acmetest.Server, c redis.UniversalClient, prefix string, key []byte, challenge string, hosts []string, start bool, hl, tl net.Listener) *clusterInstance {
	t.Helper()
	store, err := NewRedisStorage(RedisOptions{Client: c, Prefix: prefix, Key: key, LockPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := acmeConfig(ca, t.TempDir(), hosts...)
	cfg.Storage = store
	cfg.Challenges = []string{challenge}
	cfg.SyncInterval = 200 * time.Millisecond
	inst := &clusterInstance{tlsAddr: tl.Addr().String(), cacheDir: cfg.CacheDir}
	if start {
		inst.m, inst.a = startManager(t, cfg, hl, tl)
	} else {
		inst.m, inst.a = serveManager(t, cfg, hl, tl)
	}
	return inst
}

func serial(t *testing.T, inst *clusterInstance, host string, roots *x509.CertPool) *big.Int {
	t.Helper()
	return served(t, inst.tlsAddr, host, roots).SerialNumber
}

// TestClusterOrdersOnceAndAllServe: three instances share Redis. Pebble
// validates against instance 0 only, which is built (its listeners answer)
// but not started, so the orders are placed by instance 1 or 2, racing for
// the lock; the challenge answers instance 0 gives were published by them.
// One order per name; all three serve the same certificate, instance 0
// after it starts, without an order of its own. The private keys are not
// in Redis in the clear.
func TestClusterOrdersOnceAndAllServe(t *testing.T) {
	for _, challenge := range []string{ChallengeHTTP01, ChallengeTLSALPN01} {
		t.Run(challenge, func(t *testing.T) {
			c, prefix := testRedis(t)
			key := testKey()
			hosts := []string{"shop.test", "www.shop.test"}

			// Pebble validates against instance 0's listeners.
			hl, tl := listeners(t)
			ca := acmetest.Start(t, acmetest.Options{HTTPPort: port(hl), TLSPort: port(tl)})
			inst0 := clusterInstanceOn(t, ca, c, prefix, key, challenge, hosts, false, hl, tl)

			var others [2]*clusterInstance
			var wg sync.WaitGroup
			for i := range others {
				others[i] = newClusterInstance(t, ca, c, prefix, key, challenge, hosts, false)
			}
			for _, o := range others {
				wg.Add(1)
				go func() { defer wg.Done(); o.m.Start() }()
			}
			wg.Wait()
			for _, o := range others {
				for _, h := range hosts {
					if _, err := o.a.Certificate(context.Background(), h); err != nil {
						t.Fatalf("instance without a certificate for %s: %v (last error %v)", h, err, o.a.LastError(h))
					}
				}
			}
			if n := ca.Orders(); n != len(hosts) {
				t.Fatalf("%d orders for %d names", n, len(hosts))
			}

			inst0.m.Start()
			for _, h := range hosts {
				want := serial(t, others[0], h, ca.IssuerRoots())
				for i, inst := range []*clusterInstance{inst0, others[0], others[1]} {
					if got := serial(t, inst, h, ca.IssuerRoots()); got.Cmp(want) != 0 {
						t.Errorf("instance %d serves serial %v for %s, want %v", i, got, h, want)
					}
				}
			}
			if n := ca.Orders(); n != len(hosts) {
				t.Errorf("%d orders after the third instance started, want %d", n, len(hosts))
			}

			// What Redis holds is sealed: no PEM private key in any value.
			ctx := testCtx(t)
			iter := c.Scan(ctx, 0, prefix+"v:*", 100).Iterator()
			values := 0
			for iter.Next(ctx) {
				values++
				v := c.Get(ctx, iter.Val()).Val()
				if len(v) < len(sealMagic) || v[:len(sealMagic)] != sealMagic {
					t.Errorf("%s is not sealed", iter.Val())
				}
			}
			if values < len(hosts)+1 { // the certificates and the account key
				t.Errorf("only %d values in Redis", values)
			}
		})
	}
}

// TestClusterRenewsOnce: when the certificate is due, all three instances
// try to renew at the same moment; one orders, the others wait for the
// lock, find the new certificate and serve it.
func TestClusterRenewsOnce(t *testing.T) {
	c, prefix := testRedis(t)
	key := testKey()
	hl, tl := listeners(t)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: port(hl), TLSPort: port(tl), CertValidity: time.Minute})
	var insts []*clusterInstance
	for i := range 3 {
		h, l := hl, tl
		if i > 0 {
			h, l = listeners(t)
		}
		inst := clusterInstanceOn(t, ca, c, prefix, key, ChallengeHTTP01, []string{"shop.test"}, false, h, l)
		inst.a.cfg.RenewBefore = 50 * time.Second // due 10 s after issuance
		insts = append(insts, inst)
	}
	for _, in := range insts {
		in.m.Start()
	}
	for _, in := range insts {
		if _, err := in.a.Certificate(context.Background(), "shop.test"); err != nil {
			t.Fatal(err)
		}
	}
	first := serial(t, insts[0], "shop.test", ca.IssuerRoots())
	if n := ca.Orders(); n != 1 {
		t.Fatalf("%d orders for the first certificate", n)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		renewed := 0
		for _, in := range insts {
			if serial(t, in, "shop.test", ca.IssuerRoots()).Cmp(first) != 0 {
				renewed++
			}
		}
		if renewed == len(insts) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 instances renewed within 40 s (orders %d)", renewed, ca.Orders())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := ca.Orders(); n != 2 {
		t.Errorf("%d orders for one renewal by three instances, want 2 in all", n)
	}
	second := serial(t, insts[0], "shop.test", ca.IssuerRoots())
	for i, in := range insts {
		if got := serial(t, in, "shop.test", ca.IssuerRoots()); got.Cmp(second) != 0 {
			t.Errorf("instance %d serves %v, want %v", i, got, second)
		}
	}
}

// TestClusterLocalCopy: an instance keeps a local copy of what it stores in
// Redis. Restarted while Redis has lost its data, or while Redis cannot be
// reached at all, it serves that copy and orders nothing.
func TestClusterLocalCopy(t *testing.T) {
	c, prefix := testRedis(t)
	key := testKey()
	hl, tl := listeners(t)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: port(hl), TLSPort: port(tl)})
	first := clusterInstanceOn(t, ca, c, prefix, key, ChallengeHTTP01, []string{"shop.test"}, true, hl, tl)
	if _, err := first.a.Certificate(context.Background(), "shop.test"); err != nil {
		t.Fatal(err)
	}
	want := serial(t, first, "shop.test", ca.IssuerRoots())
	first.m.Stop()

	// A Redis that is not there: a port that was just free.
	gone, _ := listeners(t)
	deadAddr := gone.Addr().String()
	gone.Close()
	dead := redis.NewClient(&redis.Options{Addr: deadAddr, DialTimeout: 500 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })

	ctx := testCtx(t)
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val()) // Redis restarted without persistence
	}
	for name, client := range map[string]redis.UniversalClient{"redis emptied": c, "redis unreachable": dead} {
		t.Run(name, func(t *testing.T) {
			store, err := NewRedisStorage(RedisOptions{Client: client, Prefix: prefix, Key: key, LockPoll: 20 * time.Millisecond, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			cfg := acmeConfig(ca, first.cacheDir, "shop.test")
			cfg.Storage, cfg.Challenges = store, []string{ChallengeHTTP01}
			h2, t2 := listeners(t)
			_, a := startManager(t, cfg, h2, t2)
			inst := &clusterInstance{a: a, tlsAddr: t2.Addr().String()}
			if got := serial(t, inst, "shop.test", ca.IssuerRoots()); got.Cmp(want) != 0 {
				t.Errorf("served serial %v, want the local copy's %v", got, want)
			}
			if n := ca.Orders(); n != 1 {
				t.Errorf("%d orders, want the first one only", n)
			}
		})
	}
}
