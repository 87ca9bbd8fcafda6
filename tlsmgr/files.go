package tlsmgr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/internal/every"
)

// maxPEMSize bounds a certificate or key file; real ones are a few KiB.
const maxPEMSize = 1 << 20

// ParseKeyPair parses a PEM certificate chain and private key and checks
// that they belong together, that the certificate is not expired and that
// it covers every host in hosts. Errors say which of these failed.
func ParseKeyPair(certPEM, keyPEM []byte, hosts []string, now time.Time) (*tls.Certificate, error) {
	if len(certPEM) > maxPEMSize || len(keyPEM) > maxPEMSize {
		return nil, errors.New("certificate or key larger than 1 MiB")
	}
	if !bytes.Contains(certPEM, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, errors.New("no PEM certificate found")
	}
	if !bytes.Contains(keyPEM, []byte("PRIVATE KEY-----")) {
		return nil, errors.New("no PEM private key found")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate and key do not form a pair: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, h := range hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			return nil, fmt.Errorf("certificate does not cover host %q (it names %v)", h, leaf.DNSNames)
		}
	}
	return &cert, nil
}

// FileSource serves a certificate from PEM files and reloads it when the
// files change on disk (certbot, cert-manager and Vault agents replace
// them). A broken replacement is logged and the previous certificate stays.
type FileSource struct {
	certFile, keyFile string
	hosts             []string
	interval          time.Duration
	log               *slog.Logger

	current atomic.Pointer[tls.Certificate]
	mu      sync.Mutex
	stamp   string     // what was last loaded (or failed), to notice changes
	loop    every.Loop // periodic file checks
}

// NewFileSource loads certFile and keyFile now (an error here is a
// configuration error) and checks them every interval afterwards.
func NewFileSource(certFile, keyFile string, hosts []string, interval time.Duration, log *slog.Logger) (*FileSource, error) {
	if log == nil {
		log = slog.Default()
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	s := &FileSource{certFile: certFile, keyFile: keyFile, hosts: hosts, interval: interval, log: log}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Certificate returns the loaded certificate.
func (s *FileSource) Certificate(context.Context, string) (*tls.Certificate, error) {
	return s.current.Load(), nil
}

// Reload loads the files if they changed since the last load. It reports
// the error of a broken replacement (the old certificate stays in use).
func (s *FileSource) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stamp, _ := s.fileStamp(); stamp == s.stamp {
		return nil // unchanged, or the same failure as last time
	}
	return s.reloadLocked()
}

func (s *FileSource) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *FileSource) reloadLocked() error {
	stamp, _ := s.fileStamp()
	s.stamp = stamp // a broken file is reported once, not every interval
	certPEM, err := readSmall(s.certFile)
	if err != nil {
		return fmt.Errorf("certificate file %s: %w", s.certFile, err)
	}
	keyPEM, err := readSmall(s.keyFile)
	if err != nil {
		return fmt.Errorf("key file %s: %w", s.keyFile, err)
	}
	cert, err := ParseKeyPair(certPEM, keyPEM, s.hosts, time.Now())
	if err != nil {
		return fmt.Errorf("certificate %s with key %s: %w", s.certFile, s.keyFile, err)
	}
	s.current.Store(cert)
	return nil
}

// fileStamp identifies the files' current contents by hash: size and
// modification time miss a same-size key copied with its old mtime
// (cp -p, tar). The files are small; reading them every interval is cheap.
// A file that cannot be read yields a stamp naming the error, so a missing
// file is reported once, not at every interval.
func (s *FileSource) fileStamp() (string, error) {
	h := sha256.New()
	for _, f := range []string{s.certFile, s.keyFile} {
		data, err := readSmall(f)
		if err != nil {
			return "error:" + err.Error(), err
		}
		h.Write(data)
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

func readSmall(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxPEMSize {
		return nil, fmt.Errorf("%d bytes, larger than 1 MiB", st.Size())
	}
	return os.ReadFile(path)
}

// Start checks the files for changes every interval.
func (s *FileSource) Start() {
	s.loop.Start(s.interval, func(context.Context) {
		before := s.current.Load()
		if err := s.Reload(); err != nil {
			s.log.Error("certificate reload failed; keeping the previous certificate", "cert", s.certFile, "err", err)
		} else if after := s.current.Load(); after != before {
			s.log.Info("certificate reloaded", "cert", s.certFile, "not_after", after.Leaf.NotAfter)
		}
	})
}

// Stop ends the file watching.
func (s *FileSource) Stop() { s.loop.Stop() }
