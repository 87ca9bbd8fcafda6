package tlsmgr

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// KeyType is the type of private key generated for a certificate.
type KeyType string

// Supported key types.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	RSA2048   KeyType = "rsa-2048"
)

func generateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("key type must be ecdsa-p256 or rsa-2048, got %q", kt)
	}
}

// ensureDir creates dir with mode 0700 (it holds private keys) and tightens
// an existing one.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict %s to 0700: %w", dir, err)
	}
	return nil
}

// writeKeyPair stores key and chain as one PEM file with mode 0600, written
// to a temporary file and renamed so a crash never leaves half a key.
func writeKeyPair(path string, key crypto.Signer, chain [][]byte) error {
	buf, err := encodeKeyPair(key, chain)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, buf)
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readKeyPair loads a file written by writeKeyPair.
func readKeyPair(path string, hosts []string, now time.Time) (*tls.Certificate, error) {
	data, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	return ParseKeyPair(data, data, hosts, now)
}

// fileNameFor names the stored certificate of a set of hosts.
func fileNameFor(prefix string, hosts []string) string {
	sorted := append([]string(nil), hosts...)
	sort.Strings(sorted)
	if len(sorted) == 1 && !strings.ContainsAny(sorted[0], "*/\\") {
		return prefix + sorted[0] + ".pem"
	}
	sum := sha256.Sum256([]byte(strings.Join(sorted, ",")))
	return prefix + hex.EncodeToString(sum[:8]) + ".pem"
}

// SelfSigned serves a self-signed certificate for development. It is
// generated once and kept in the state directory, so browsers that were told
// to trust it keep doing so across restarts.
type SelfSigned struct {
	cert *tls.Certificate
}

// NewSelfSigned loads or creates the self-signed certificate for hosts in dir.
func NewSelfSigned(dir string, hosts []string) (*SelfSigned, error) {
	if len(hosts) == 0 {
		return nil, errors.New("self-signed certificate needs at least one host name")
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, fileNameFor("self-signed-", hosts))
	now := time.Now()
	if c, err := readKeyPair(path, hosts, now); err == nil && c.Leaf.NotAfter.Sub(now) > 7*24*time.Hour {
		return &SelfSigned{cert: c}, nil
	}
	key, err := generateKey(ECDSAP256)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"Portcullis self-signed (development only)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              hosts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create self-signed certificate: %w", err)
	}
	if err := writeKeyPair(path, key, [][]byte{der}); err != nil {
		return nil, err
	}
	c, err := readKeyPair(path, hosts, now)
	if err != nil {
		return nil, err
	}
	return &SelfSigned{cert: c}, nil
}

// Certificate returns the self-signed certificate.
func (s *SelfSigned) Certificate(context.Context, string) (*tls.Certificate, error) {
	return s.cert, nil
}

// Start does nothing: a self-signed certificate needs no upkeep.
func (s *SelfSigned) Start() {}

// Stop does nothing.
func (s *SelfSigned) Stop() {}
