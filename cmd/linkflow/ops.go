package main

import (
	"context"
	"flag"

	"github.com/linkflow/linkflow/admin"
)

// opsFlags are the flags of linkflow status and linkflow dlq list|replay;
// package admin (with monitor) does the work.
func opsFlags(fs *flag.FlagSet, name string) func(context.Context, *admin.Admin) error {
	c := admin.OpsCommand{Name: name}
	fs.StringVar(&c.NATS.URL, "nats-url", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated")
	fs.StringVar(&c.NATS.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&c.NATS.CAFile, "nats-ca", "", "PEM file of the certificates that verify the NATS servers'")
	fs.StringVar(&c.NATS.CertFile, "nats-cert", "", "client certificate (PEM) for mutual TLS with NATS; with --nats-key")
	fs.StringVar(&c.NATS.KeyFile, "nats-key", "", "key of --nats-cert (PEM)")
	switch name {
	case "status":
		fs.StringVar(&c.Probes, "probe", "", "processes whose /readyz to check, role=host:port,... (their metrics addresses)")
		fs.BoolVar(&c.JSON, "json", false, "write JSON")
	case "dlq list":
		fs.BoolVar(&c.JSON, "json", false, "write JSON")
		fs.IntVar(&c.Limit, "limit", 100, "show the newest N")
	case "dlq replay":
		fs.Uint64Var(&c.Seq, "seq", 0, "the dead letter's sequence (see dlq list)")
		fs.BoolVar(&c.All, "all", false, "every dead letter")
	}
	return func(ctx context.Context, a *admin.Admin) error {
		c.NATSURLGiven = explicit(fs, "nats-url")
		return a.RunOps(ctx, c)
	}
}
