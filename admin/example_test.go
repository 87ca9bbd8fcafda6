package admin_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/bans"
)

// How cmd/ wires the admin listener: the audit store, the gateway's ban
// table, an exclusion explainer, users and tokens from the configuration,
// extra handlers, then Serve until shutdown.
func Example() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	st, err := store.OpenSQLite("/var/lib/portcullis/audit.db", store.SQLiteOptions{MaxAge: 30 * 24 * time.Hour})
	if err != nil {
		log.Error("audit store", "error", err)
		return
	}
	defer st.Close()
	banTable, err := bans.Open("/var/lib/portcullis/bans.json", 100000)
	if err != nil {
		log.Error("bans", "error", err)
		return
	}
	srv, err := admin.New(admin.Options{
		Store: st,
		Bans:  banTable,
		Explain: func(e *audit.Entry) (string, error) {
			return "", nil // explain.Explain(ctx, currentConfig(), e, explain.Options{}) → Suggestion.YAML()
		},
		Auth: admin.Auth{
			Users:  []admin.User{{Name: "alice", PasswordHash: "$2a$12$..."}},
			Tokens: []admin.Token{{Name: "ci", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},
		},
		Log: log,
	})
	if err != nil {
		log.Error("admin", "error", err)
		return
	}
	srv.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), true)

	l, err := net.Listen("tcp", "127.0.0.1:9090")
	if err != nil {
		log.Error("admin listener", "error", err)
		return
	}
	var tlsConfig *tls.Config // from admin.cert_file and admin.key_file, when set
	go func() {
		if err := srv.Serve(l, tlsConfig); err != nil {
			log.Error("admin listener", "error", err)
		}
	}()

	// At shutdown:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
